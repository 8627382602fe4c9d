"""Whether PyTorch is installed: the encoders extra brings it, the base install leaves it out
(its Linux wheel pulls gigabytes of CUDA libraries), so training and document encoding check."""

from __future__ import annotations

import importlib.util

TORCH_EXTRA = "pip install 'ebr[encoders]'"


def has_torch() -> bool:
    try:
        return importlib.util.find_spec("torch") is not None
    except ValueError:  # sys.modules["torch"] = None: an import blocked on purpose
        return False
