"""Records and texts → the tensors the towers read, the same at training and at serving time.

- :mod:`~ebr.encoders.features.words`: text normalisation and word splitting, one definition;
- :mod:`~ebr.encoders.features.hashing`: MurmurHash3 bucketing, stable across processes;
- :mod:`~ebr.encoders.features.trigrams`, :mod:`~ebr.encoders.features.ngrams`,
  :mod:`~ebr.encoders.features.categorical`: the hashed feature kinds;
- :mod:`~ebr.encoders.features.tokenizer`: the SentencePiece vocabulary of the text transformer;
- :mod:`~ebr.encoders.features.batches`: the batches the channels consume;
- :mod:`~ebr.encoders.features.tower_featurizer`: every channel of a tower at once, and the
  check that a record can be featurized;
- :mod:`~ebr.encoders.features.featurized_records`: a corpus featurized once, cut into batches;
- :mod:`~ebr.encoders.features.trigram_projection`: a training-free text embedding (a random
  projection of hashed character trigrams; the quickstart's ``name-trigrams``).

The public names are exported by :mod:`ebr.encoders`.  Ids and hashing need no torch; only the
batches do, and they import it when built.
"""
