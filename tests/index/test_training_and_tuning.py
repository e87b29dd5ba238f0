"""Issue 11.8: the training sample has its own budget, and the recall in the manifest is what
fresh queries get.

Before the fix the sample was capped by a fifth of the *index's* memory budget (IVF1024 trained
on 3,276 vectors, 3 per list, at 32 MB), and nprobe was tuned on stored vectors that had been
in the training sample: fresh queries from the same distribution got 0.938 against a 0.95
target at 50k vectors.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from shard_data import centres, mixture, write_encoded  # noqa: E402

from zsvl.errors import InvalidParameterError  # noqa: E402
from zsvl.index import CaptionIndex  # noqa: E402
from zsvl.index import build as build_module  # noqa: E402
from zsvl.index import train as train_module  # noqa: E402
from zsvl.index.build import build_from_shards  # noqa: E402
from zsvl.index.choose import MIN_POINTS_PER_CENTROID  # noqa: E402

faiss = pytest.importorskip("faiss")


def _plan(nlist: int):
    return train_module.Plan(nlist=nlist, with_ids=True)


def test_training_sample_ignores_the_index_budget_and_aims_for_64_per_list(tmp_path) -> None:
    rng = np.random.default_rng(0)
    held = np.sort(rng.choice(200_000, 1000, replace=False))
    ids, info = train_module.train_sample(_plan(1024), 200_000, 512, "auto", held, rng)
    assert info["points"] == len(ids) == 64 * 1024 and info["points_per_list"] == 64.0
    assert len(np.intersect1d(ids, held)) == 0 and np.all(np.diff(ids) > 0)
    assert ids.max() < 200_000
    # a small explicit training budget that cannot hold 39 per list is refused, with the fix
    with pytest.raises(
        InvalidParameterError,
        match=r"train_memory=33554432 bytes .* at least "
        r"39936 \(39 per list\)",
    ):
        train_module.train_sample(_plan(1024), 200_000, 512, 32 * 2**20, held, rng)
    # an explicit budget that fits a sample between the minimum and the aim is honoured
    ids, info = train_module.train_sample(_plan(1024), 200_000, 512, 200 * 2**20, held, rng)
    assert MIN_POINTS_PER_CENTROID * 1024 <= info["points"] == 200 * 2**20 // 4096 < 64 * 1024


def test_held_out_ids_map_to_untouched_positions() -> None:
    rng = np.random.default_rng(1)
    held = np.array([0, 1, 5, 9], dtype=np.int64)
    ids, _ = train_module.train_sample(_plan(0), 10, 4, None, held, rng)
    assert sorted(ids.tolist()) == [2, 3, 4, 6, 7, 8]


def test_small_index_budget_does_not_starve_training(tmp_path) -> None:
    """The issue's case, scaled: a 2 MB index budget used to leave 2 training vectors per list."""
    vectors = mixture(20_000, 16, centres(400, 16), seed=2)
    out = write_encoded(tmp_path / "ix", vectors)
    m = build_from_shards(out, factory="IVF256,Flat", max_memory="2M", tune_queries=1000)
    train = m["build"]["train"]
    assert train["points"] == 64 * 256 and train["points_per_list"] == 64.0
    assert m["build"]["options"]["train_memory"] == "auto"


def test_tuning_queries_are_outside_training_and_the_index_while_tuning(tmp_path, monkeypatch):
    vectors = mixture(6000, 16, centres(100, 16), seed=4)
    out = write_encoded(tmp_path / "ix", vectors)
    seen = {}
    real_sample, real_tune = build_module.train_sample, build_module.tune_search_params

    def spy_sample(plan, n, dim, budget, held, rng):
        ids, info = real_sample(plan, n, dim, budget, held, rng)
        seen["train"], seen["held"] = ids, held
        return ids, info

    def spy_tune(index, queries, truth, **kw):
        seen["ntotal"] = index.ntotal
        _, found = index.search(queries, 1)
        seen["self_found"] = int((found[:, 0] == seen["held"]).sum())
        seen["truth_has_held"] = bool(np.isin(truth, seen["held"]).any())
        return real_tune(index, queries, truth, **kw)

    monkeypatch.setattr(build_module, "train_sample", spy_sample)
    monkeypatch.setattr(build_module, "tune_search_params", spy_tune)
    m = build_from_shards(out, factory="IVF64,Flat", tune_queries=500)
    held = seen["held"]
    assert len(held) == 500 and len(np.intersect1d(seen["train"], held)) == 0
    assert seen["ntotal"] == 6000 - 500 and seen["self_found"] == 0
    assert not seen["truth_has_held"]
    assert m["count"] == 6000 and CaptionIndex.load(out).index.ntotal == 6000  # added back
    tuning = m["tuning"]
    assert tuning["queries"] == 500 and tuning["query_source"].startswith("held-out")
    assert 0 < tuning["recall_stderr"] < 0.02


def _fresh_recall(out: Path, queries: np.ndarray) -> float:
    index = CaptionIndex.load(out)
    xb = np.concatenate([chunk for _, chunk in index.shards.iter_chunks()])
    _, truth = faiss.knn(queries, xb, 10, metric=faiss.METRIC_INNER_PRODUCT)
    found = index.search(queries, 10).ids
    return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth, strict=True)]))


def test_fresh_queries_reach_the_measured_recall(tmp_path) -> None:
    """Fast check at 12k vectors: the manifest's recall is what 3000 fresh queries get."""
    mix = centres(300, 32)
    out = write_encoded(tmp_path / "ix", mixture(12_000, 32, mix, seed=5))
    m = build_from_shards(out, factory="IVF128,Flat", target_recall=0.9, tune_queries=1000)
    fresh = _fresh_recall(out, mixture(3000, 32, mix, seed=99))
    tuning = m["tuning"]
    assert tuning["reached"]
    assert fresh >= 0.9 - 0.01, (fresh, tuning["recall"], tuning["params"])
    assert abs(fresh - tuning["recall"]) <= 4 * tuning["recall_stderr"] + 0.01


@pytest.mark.slow
def test_fresh_queries_reach_the_target_where_the_old_tuning_fell_short(tmp_path) -> None:
    """The issue's setting, scaled to 30k x 128 (about 20 s): IVF1024 under an 8 MB index budget.
    Measured before the fix: tuned 0.951, fresh 0.939; after: tuned 0.953, fresh 0.958."""
    mix = centres(2000, 128)
    blocks = [mixture(min(8192, 30_000 - lo), 128, mix, seed=1 + s)
              for s, lo in enumerate(range(0, 30_000, 8192))]  # fmt: skip
    out = write_encoded(tmp_path / "ix", np.concatenate(blocks))
    m = build_from_shards(out, factory="IVF1024,Flat", max_memory="8M", tune_queries=1000)
    fresh = _fresh_recall(out, mixture(3000, 128, mix, seed=999))
    assert m["tuning"]["reached"] and fresh >= 0.95 - 0.005, (fresh, m["tuning"]["recall"])
