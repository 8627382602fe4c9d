"""A trained model on disk and in service: its directory, its weights, the encoders.

- :mod:`~ebr.encoders.serving.model_files`: the directory's layout, and reading it, weights
  included (numpy and safetensors; no torch);
- :mod:`~ebr.encoders.serving.numpy_tower`: a bag-only tower in numpy (serving without torch);
- :mod:`~ebr.encoders.serving.model_directory`: writing a model directory (float32 or float16
  tables), and loading it into torch's towers for batched document encoding
  (:class:`~ebr.encoders.serving.model_directory.EncoderModel`);
- :mod:`~ebr.encoders.serving.query_encoder`: one query at a time, on numpy for bag-only
  towers and on torch otherwise, without the training code.

The public names are exported by :mod:`ebr.encoders`.
"""
