(and (term location:seattle) (match text "John Smithe Paul" :minimum-should-match 2))
