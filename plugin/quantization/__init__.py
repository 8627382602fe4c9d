"""Vector quantization both stores use: the coarse quantizer that names a vector's cluster
and a query's probes (:mod:`.coarse`), its k-means training (:mod:`.kmeans`), and the
product-quantization codes of residuals (:mod:`.product`, EBR §4.1)."""
