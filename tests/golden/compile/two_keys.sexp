(and (term location:seattle) (or (nn model-141795009 :radius 0.24 :nprobe 2) (nn title-ivf :k 10 :nprobe 4)))
