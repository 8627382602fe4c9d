"""The public names of ``ebr.encoders`` exist, are unique, and its errors share ebr's root."""

from __future__ import annotations

import ebr.encoders
from ebr.errors import EbrError


def test_all_names_exist_and_are_unique() -> None:
    assert len(set(ebr.encoders.__all__)) == len(ebr.encoders.__all__)
    for name in ebr.encoders.__all__:
        assert hasattr(ebr.encoders, name), name


def test_errors_derive_from_the_package_root() -> None:
    assert issubclass(ebr.encoders.EncoderError, EbrError)
    for error in (ebr.encoders.EncoderConfigError, ebr.encoders.EncoderInputError):
        assert issubclass(error, ebr.encoders.EncoderError)
