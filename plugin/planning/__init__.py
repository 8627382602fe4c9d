"""AST -> logical plan -> executable plan: the rewrite rules (:mod:`.rules`), the term
conditions an expression implies (:mod:`.implied_terms`), the query-embedding checks
(:mod:`.query_vectors`) and the pipeline that runs them (:mod:`.planner`).

Named ``planning`` rather than ``plan`` so that ``ebr.plan`` stays the function."""
