(and (match text "John Smithe") (match location "Menlo_Park"))
