"""Measuring retrieval: recall@K, graded nDCG@K and MRR@K over judged queries (:mod:`.metrics`)."""
