"""The commands that run encoders need torch, which the base install leaves out."""

from __future__ import annotations

import importlib.util

import click


def has_torch() -> bool:
    return importlib.util.find_spec("torch") is not None


def require_torch(command: str) -> None:
    """Stop ``command`` with an install hint when torch is missing (not a traceback)."""
    if not has_torch():
        raise click.ClickException(f"{command} needs PyTorch, which this install lacks: "
                                   "pip install 'ebr[encoders]'")
