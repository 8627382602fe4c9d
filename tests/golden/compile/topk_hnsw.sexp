; top-K on an HNSW field: ef_search from the schema, constraint as knn.filter
(and (term location:seattle) (nn model-141795009 :k 20))
