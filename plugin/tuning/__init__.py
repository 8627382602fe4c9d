"""ANN settings chosen by measurement (EBR §4.1, ``ebr tune``).

:mod:`.sources` reads the vectors and queries (``.npy``, ``.npz``, an index's embeddings),
:mod:`.neighbours` computes exact cosine neighbours and the recall figures, :mod:`.sweep`
runs coarse clusters x codes x nprobe against exact search with ebr's own quantizers,
:mod:`.recommend` picks the cheapest settings that keep a share of exact recall, and
:mod:`.report` writes the table, the JSON and the plot.
"""
