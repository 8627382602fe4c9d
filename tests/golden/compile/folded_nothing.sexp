; (difference x x) folds to nothing, and so does the and around it
(or (term text:a) (and (term text:b) (difference (term text:c) (term text:c))))
