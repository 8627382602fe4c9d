"""bench/homedepot_pool.py and bench/homedepot_eval.py's two pools: the reranker trains on a
narrow pool of the reranked path's branches and reorders the wide one."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from homedepot_pool import MINILM_KEY, pool_size, pool_template, training_pool  # noqa: E402

from ebr import parse  # noqa: E402
from ebr.mappings import CoarseQuantizerSpec, EmbeddingKey, Namespace, Schema  # noqa: E402


def test_the_template_has_each_branch_with_its_k_and_nprobe() -> None:
    schema = Schema.create("s", (Namespace("title", "english"),),
                           (EmbeddingKey("m", 4, CoarseQuantizerSpec(nlist=4)),
                            EmbeddingKey(MINILM_KEY, 4, CoarseQuantizerSpec(nlist=4))))
    wide = pool_template(1000, 64, 1000)
    assert wide == ("(or (match title $q :minimum-should-match 1 :k 1000) "
                    f"(nn $key :k 1000 :nprobe 64) (nn {MINILM_KEY} :k 1000 :nprobe 64))")
    assert pool_template(300) == ("(or (match title $q :minimum-should-match 1 :k 300) "
                                  "(nn $key :k 300))")  # the key's own nprobe
    for template in (wide, pool_template(300), pool_template(5, 2, 3)):
        parse(template.replace("$q", '"cordless drill"').replace("$key", "m"), schema)
    assert (pool_size(1000, 1000), pool_size(300)) == (3000, 600)


@pytest.mark.parametrize("minilm", [True, False])
def test_the_training_pool_has_the_reranked_paths_branches_at_its_own_k(minilm: bool) -> None:
    template, size = training_pool(300, 64, minilm)
    assert template == pool_template(300, 64, 300 if minilm else 0)
    assert size == (900 if minilm else 600)


def test_the_eval_trains_on_the_training_pool_and_reranks_the_wide_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The whole script on a tiny catalogue: the cross-fit's groups come from ``--train-pool``
    (at most 2 x 4 candidates a query), the reranked path reorders ``--pool``'s (up to 2 x 10)."""
    pytest.importorskip("torch", reason="the cross-fit trains encoders: pip install 'ebr[encoders]'")
    pytest.importorskip("lightgbm", reason="the reranker is LightGBM's: pip install 'ebr[rerank]'")
    import homedepot_eval

    from support.homedepot import tiny_catalogue, tiny_model, write_data_directory

    monkeypatch.setattr(homedepot_eval, "NLIST", 2)
    data = tiny_catalogue()
    model = tiny_model(data, tmp_path)
    source = write_data_directory(data, tmp_path / "data")
    work = tmp_path / "work"
    monkeypatch.setattr(sys, "argv", [
        "homedepot_eval.py", "--data", str(source), "--model", str(model), "--work", str(work),
        "--no-minilm", "--no-baselines", "--nprobe", "2", "--sweep", "0.5", "--pool", "10",
        "--train-pool", "4", "--latency-queries", "3"])
    homedepot_eval.main()
    out = capsys.readouterr().out
    assert f"trained (cross-fit) on {pool_template(4, 2)}" in out

    for half in (0, 1):
        (features,) = (work / "cross-fit" / f"half{half}").glob("features-*.npz")
        sizes = np.load(features)["sizes"]
        assert sizes.max() <= 8 and sizes.max() > 4  # both branches of the narrow pool
    ranked: dict[str, int] = {}
    for line in (work / "runs" / "pool+reranker.run").read_text().splitlines():
        query = line.split()[0]
        ranked[query] = ranked.get(query, 0) + 1
    assert max(ranked.values()) > 8  # the wide pool, reordered whole
    assert max(ranked.values()) <= 20
