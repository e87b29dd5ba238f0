"""Issue 13: the GPU build and search paths, with FAISS's GPU calls replaced by CPU equivalents.

Before the fix, build asked the GPU index for its list count through faiss.extract_index_ivf
(which only knows CPU indexes), fell back to one list and trained an IVF256 index on 9,984
vectors; and search never moved the index to a GPU.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fake_gpu  # noqa: E402
from shard_data import centres, mixture, write_encoded  # noqa: E402

from zsvl.index import CaptionIndex  # noqa: E402
from zsvl.index.build import build_from_shards  # noqa: E402

faiss = pytest.importorskip("faiss")

N, DIM, NLIST = 12_000, 16, 256


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    return mixture(N, DIM, centres(300, DIM), seed=1)


def test_gpu_build_trains_every_list_and_matches_the_cpu_build(tmp_path, vectors, monkeypatch):
    cpu_out = write_encoded(tmp_path / "cpu", vectors)
    cpu = build_from_shards(cpu_out, factory=f"IVF{NLIST},Flat", tune_queries=500, use_gpu=False)
    made = fake_gpu.install(monkeypatch)
    gpu_out = write_encoded(tmp_path / "gpu", vectors)
    gpu = build_from_shards(gpu_out, factory=f"IVF{NLIST},Flat", tune_queries=500, use_gpu=True)
    assert gpu["build"]["gpu"] is True and len(made) == 1 and made[0].ntotal == N - 500
    # 64 per list from the 11,500 vectors not held out, not the 9,984 of a one-list guess
    assert gpu["build"]["train"]["points"] == min(N - 500, 64 * NLIST) == 11_500
    assert gpu["build"]["train"] == cpu["build"]["train"]
    assert gpu["count"] == N and gpu["search_params"] == cpu["search_params"]
    a = CaptionIndex.load(cpu_out, use_gpu=False).search(vectors[:50], 10)
    b = CaptionIndex.load(gpu_out, use_gpu=False).search(vectors[:50], 10)
    np.testing.assert_array_equal(a.ids, b.ids)


def test_search_runs_on_the_gpu_with_the_tuned_parameters(tmp_path, vectors, monkeypatch):
    out = write_encoded(tmp_path / "ix", vectors)
    build_from_shards(out, factory=f"IVF{NLIST},Flat", tune_queries=300, use_gpu=False)
    on_cpu = CaptionIndex.load(out)  # no GPU: stays on the CPU
    assert on_cpu.on_gpu is False
    made = fake_gpu.install(monkeypatch)
    on_gpu = CaptionIndex.load(out)  # use_gpu=None: the GPU when there is one
    assert on_gpu.on_gpu is True and on_gpu.index is made[0]
    assert made[0].params == [on_gpu.search_params] and on_gpu.search_params.startswith("nprobe=")
    q = vectors[:40]
    got, want = on_gpu.search(q, 10), on_cpu.search(q, 10)
    assert made[0].searches >= 1
    np.testing.assert_array_equal(got.ids, want.ids)
    np.testing.assert_allclose(got.scores, want.scores, atol=1e-6)
    on_gpu.search(q, 10, params="nprobe=1")  # a per-call setting goes to the GPU index too
    assert made[0].params[-2:] == ["nprobe=1", on_gpu.search_params]
    assert CaptionIndex.load(out, use_gpu=False).on_gpu is False
    searches = made[0].searches
    big = on_gpu.search(q[:2], 3000)  # beyond the GPU's k limit: the CPU copy answers
    np.testing.assert_array_equal(big.ids, on_cpu.search(q[:2], 3000).ids)
    assert made[0].searches == searches


def test_gpu_refusing_the_tuned_parameters_falls_back_to_the_cpu(tmp_path, vectors, monkeypatch):
    out = write_encoded(tmp_path / "ix", vectors[:3000])
    build_from_shards(out, factory="IVF32,Flat", tune_queries=200, use_gpu=False)
    fake_gpu.install(monkeypatch, refuse_params=True)
    index = CaptionIndex.load(out)
    assert index.on_gpu is False
    assert index.search(vectors[:5], 3).ids.shape == (5, 3)
