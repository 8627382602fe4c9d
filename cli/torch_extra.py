"""The commands that run encoders need torch, which the base install leaves out."""

from __future__ import annotations

import click

from ebr.encoders.torch_install import TORCH_EXTRA, has_torch

__all__ = ["has_torch", "require_torch"]


def require_torch(command: str) -> None:
    """Stop ``command`` with an install hint when torch is missing (not a traceback)."""
    if not has_torch():
        raise click.ClickException(f"{command} needs PyTorch, which this install lacks: {TORCH_EXTRA}")
