; EBR §4.2.1: the same query with fuzzy matching through nn (hybrid retrieval)
(and (or (term location:seattle) (term location:menlo_park))
     (or (and (term text:john) (term text:smithe))
         (nn model-141795009 :radius 0.24 :nprobe 16)))
