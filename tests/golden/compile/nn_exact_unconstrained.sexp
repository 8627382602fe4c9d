(nn model-141795009 :radius 0.5 :exact true)
