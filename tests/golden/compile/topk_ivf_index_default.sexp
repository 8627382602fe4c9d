(nn title-ivf :k 5)
