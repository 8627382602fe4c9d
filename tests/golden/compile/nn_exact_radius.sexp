(and (term location:seattle) (nn model-141795009 :radius 0.3 :exact true))
