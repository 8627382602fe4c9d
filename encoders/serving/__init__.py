"""A trained model on disk and in service: its directory, its exported query tower, the encoders.

- :mod:`~ebr.encoders.serving.model_files`: the directory's layout, and reading it (light);
- :mod:`~ebr.encoders.serving.tower_export`: a tower traced to TorchScript over plain tensors;
- :mod:`~ebr.encoders.serving.model_directory`: writing a model directory, and loading it whole
  for batched document encoding (:class:`~ebr.encoders.serving.model_directory.EncoderModel`);
- :mod:`~ebr.encoders.serving.query_encoder`: one query at a time from the TorchScript tower,
  without the training code or the eager towers.

The public names are exported by :mod:`ebr.encoders`.
"""
