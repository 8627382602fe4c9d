; default nprobe from the schema (2), probes tie-broken by cluster id
(nn model-141795009 :radius 0.4)
