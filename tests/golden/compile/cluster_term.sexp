(term model-141795009.cluster:3)
