; a quoted term: the value holds a space
(term "category:garden tools")
