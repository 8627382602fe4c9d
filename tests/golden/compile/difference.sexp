(difference (term category:shoes) (term location:seattle) (term text:red))
