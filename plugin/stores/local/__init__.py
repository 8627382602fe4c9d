"""The local store: an index in a directory, no server.

SQLite holds the documents, terms, embeddings and quantizers, the vectors themselves appended
to a file per key beside it (:mod:`ebr.stores.local.vector_file`); searches run on roaring
bitmaps and float32 matrices, mapped on open from the snapshot file a writer saves at close
(:mod:`ebr.stores.local.snapshot_file`), else rebuilt from the database
(:mod:`ebr.stores.local.store`).

>>> import tempfile
>>> import numpy as np
>>> from ebr.mappings import EmbeddingKey, Namespace, Schema
>>> from ebr.stores.protocol import IndexDocument, search_text
>>> schema = Schema.create("cities", (Namespace("country", "lowercase"),),
...                        (EmbeddingKey("m", 2),))
>>> with tempfile.TemporaryDirectory() as tmp, LocalStore.create(tmp + "/idx", schema) as store:
...     _ = store.add([IndexDocument("paris", {"country": ["fr"]}, embeddings={"m": [1, 0]}),
...                    IndexDocument("rome", {"country": ["it"]}, embeddings={"m": [0, 1]})])
...     result = search_text(store, "(or (term country:it) (nn m :k 1))",
...                          {"m": np.array([1, 0.1], np.float32)})
>>> [(hit.id, hit.branches) for hit in result.hits]
[('paris', ('q', 'q.1')), ('rome', ('q', 'q.0'))]
>>> round(result.hits[0].clauses[0].distance, 4)
0.005
"""

from ebr.quantization.kmeans import TrainingReport
from ebr.stores.local.execution import EXACT_THRESHOLD
from ebr.stores.local.store import LocalStore

__all__ = ["EXACT_THRESHOLD", "LocalStore", "TrainingReport"]
