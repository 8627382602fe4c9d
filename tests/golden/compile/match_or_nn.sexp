(or (match text "John Smithe" :minimum-should-match 1) (nn model-141795009 :radius 0.3))
