(term text:john)
