; top-K on an IVF-PQ field: nprobes per query
(and (or (term location:seattle) (term location:menlo_park)) (nn title-ivf :k 50 :nprobe 8))
