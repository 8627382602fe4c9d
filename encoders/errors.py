"""The encoders' errors, all under the package's one root :class:`ebr.errors.EbrError`."""

from __future__ import annotations

from ebr.errors import EbrError


class EncoderError(EbrError):
    """Root of the errors raised on purpose by :mod:`ebr.encoders`."""


class EncoderConfigError(EncoderError):
    """An encoder configuration or hyper-parameter that cannot work; the message names the setting."""


class EncoderInputError(EncoderError):
    """Records, texts or tensors handed to a featurizer, tower, loss or ensemble that do not fit."""
