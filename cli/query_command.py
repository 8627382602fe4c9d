"""``ebr query``: run a hybrid query against a local index and explain every hit."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import numpy as np
import numpy.typing as npt

from ebr.cli.inputs import (
    MAX_SIZE,
    cluster_options,
    key_value,
    open_store,
    query_encoders,
    query_text,
    vector_options,
)
from ebr.mappings.schema import Schema
from ebr.query.nodes import NN, walk
from ebr.query.parser import parse
from ebr.request.embedders import embedders_for
from ebr.stores.protocol import SearchResult, StoredDocument, search_text

if TYPE_CHECKING:  # torch is imported only when a model is given
    from ebr.encoders.serving.query_encoder import QueryEncoder
    from ebr.encoders.serving.sentence_encoder import SentenceEncoder


def _text_vector(schema: Schema, spec: str, models: Mapping[str, QueryEncoder | SentenceEncoder]
                 ) -> tuple[str, npt.NDArray[np.float32]]:
    key, text = key_value(spec, "--text")
    if schema.key(key) is None:
        names = ", ".join(k.name for k in schema.keys) or "none"
        raise click.BadParameter(f"the index has no embedding key {key!r} (it has: {names})",
                                 param_hint="--text")
    embedders = {e.key: e for e in embedders_for(schema, models)}
    return key, embedders[key].embed(text, {})


def _hit_json(result: SearchResult, docs: list[StoredDocument | None]) -> dict[str, Any]:
    return {
        "hits": [{**dataclasses.asdict(h), "source": dict(d.source) if d else None}
                 for h, d in zip(result.hits, docs, strict=True)],
        "stats": dataclasses.asdict(result.stats),
    }


def _render(result: SearchResult, docs: list[StoredDocument | None]) -> list[str]:
    lines = []
    for n, (hit, doc) in enumerate(zip(result.hits, docs, strict=True), 1):
        lines.append(f"{n}. {hit.id}  score {hit.score:.4f}  rank {hit.rank:.3f}  "
                     f"branches {' '.join(hit.branches)}")
        for c in hit.clauses:
            probe = f"  probe rank {c.probe_rank}" if c.probe_rank is not None else "  exact"
            lines.append(f"   {c.branch} {c.key}: distance {c.distance:.4f}{probe}")
        if doc is not None and doc.source:
            lines.append("   " + json.dumps(dict(doc.source), ensure_ascii=False))
    s = result.stats
    lines.append(f"{len(result.hits)} of {s.total} matching documents; "
                 f"{s.documents_scanned} postings scanned, {s.candidates_verified} vectors "
                 "verified; " + ", ".join(f"{k} {v * 1000:.3f} ms" for k, v in s.seconds.items()))
    for t in s.topk:
        how = f"probed {t.nprobe} clusters" if t.strategy == "probe" else "exact"
        lines.append(f"top-K {t.branch}: {how} over {t.admitted} admitted, {t.verified} verified")
    for p in s.probes:
        lines.append(f"probes {p.branch}: read by {p.read} ({p.rows} rows in the probed clusters, "
                     f"about {p.expected} admitted)")
    return lines


@click.command("query")
@click.argument("where", metavar="STORE")
@click.argument("query")
@click.option("--vector", "vector_specs", multiple=True, metavar="KEY=FILE.npy|x,y,..",
              help="Query embedding for an embedding key (repeatable).")
@click.option("--text", "text_specs", multiple=True, metavar="KEY=TEXT",
              help="Embed TEXT for KEY: with the --model whose embedding key is KEY, else (a key named "
                   "*-trigrams, as `ebr quickstart --no-train` builds) with the training-free "
                   "trigram projection (repeatable).")
@click.option("--model", "model_paths", multiple=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A model directory from `ebr train`; --text for its key uses its query tower.")
@click.option("--size", default=10, show_default=True, type=click.IntRange(0, MAX_SIZE),
              help="Hits to return.")
@click.option("--index", help="The OpenSearch index, when STORE is a cluster URL.")
@cluster_options
@click.option("--json", "as_json", is_flag=True, help="Print hits and stats as JSON.")
def query_command(where: str, query: str, vector_specs: tuple[str, ...], text_specs: tuple[str, ...],
                  model_paths: tuple[Path, ...], size: int, index: str | None,
                  ca_certs: str | None, user: str | None, as_json: bool) -> None:
    """Run QUERY against STORE, a local index directory (``local:PATH`` or ``PATH``) or an
    OpenSearch cluster URL with --index ('-' reads the query from stdin), and show each hit:
    score, the branches it matched, and per nn clause its cosine distance and the probe rank
    of its cluster; then the query's stats.

    \b
    Example (after `ebr quickstart`):
      ebr query ./ebr-quickstart --text name-trigrams='san fransisco' \\
        '(and (term country:us) (or (match name "san fransisco")
                                    (nn name-trigrams :radius 0.3 :nprobe 8)))'
    """
    text = query_text(query)
    with open_store(where, index, readonly=True, ca_certs=ca_certs, user=user) as store:
        vectors = vector_options(vector_specs)
        models = query_encoders(model_paths)
        vectors.update(_text_vector(store.schema, s, models) for s in text_specs)
        missing = sorted({n.key for n in walk(parse(text, store.schema))
                          if isinstance(n, NN)} - set(vectors))
        if missing:
            raise click.UsageError(f"the query's nn clauses need an embedding for "
                                   f"{', '.join(missing)}: give it with --vector KEY=x,y,.. "
                                   "or --text KEY=TEXT")
        result = search_text(store, text, vectors, size)
        docs = store.get_documents(result.ids)
    if as_json:
        click.echo(json.dumps(_hit_json(result, docs), indent=2, ensure_ascii=False))
    else:
        click.echo("\n".join(_render(result, docs)))
