; nn on the subtracted side: no outer constraint is pushed into it
(and (term category:shoes) (difference (term location:seattle) (and (term text:red) (nn model-141795009 :radius 0.2 :nprobe 1))))
