"""The query language: text -> forms (:mod:`.reader`) -> typed AST (:mod:`.parser`, over the
nodes of :mod:`.nodes`) -> canonical text again (:mod:`.printer`)."""
