"""Index builds: Flat equals brute force; IVF/PQ recall against exact search; manifest contents."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from caption_fakes import HashEncoder, brute_force, clustered_vectors, write_lines  # noqa: E402

from zsvl.errors import IndexMismatchError, InvalidParameterError  # noqa: E402
from zsvl.index import CaptionIndex, build_index  # noqa: E402
from zsvl.index.tune import recall_at_k  # noqa: E402


def test_flat_equals_brute_force(flat_index: CaptionIndex, vectors, queries) -> None:
    assert flat_index.manifest["factory"] == "Flat"
    res = flat_index.search(queries, k=10)
    ref_s, ref_i = brute_force(vectors, queries, 10)
    np.testing.assert_array_equal(res.ids, ref_i)
    np.testing.assert_allclose(res.scores, ref_s, atol=1e-5)
    assert res.captions[0] == [f"v {i}" for i in ref_i[0]]
    assert flat_index.manifest["tuning"]["recall"] == 1.0


def test_manifest_records_what_the_issue_asks(flat_index: CaptionIndex, table_encoder) -> None:
    m = json.loads((flat_index.root / "manifest.json").read_text())
    assert m["encoder"]["fingerprint"] == table_encoder.fingerprint
    assert (m["dim"], m["metric"], m["count"]) == (32, "inner_product", 3000)
    assert set(m["files"]) == {"index.faiss", "metadata.parquet"}
    assert all(len(e["sha256"]) == 64 and e["bytes"] > 0 for e in m["files"].values())
    assert m["index_bytes"] == (flat_index.root / "index.faiss").stat().st_size
    assert len(m["shards"]["items"]) == 3 and m["shards"]["dtype"] == "float16"
    tuning = m["tuning"]
    assert {"recall", "k", "ms_per_query_batched", "ms_per_query_single", "curve"} <= set(tuning)
    assert m["build"]["options"]["target_recall"] == 0.95
    assert m["build"]["corpus"]["format"] == "txt"
    assert m["corpus_stats"]["kept"] == 3000
    assert set(m["timings"]) == {"encode_s", "train_s", "add_s", "tune_s"}


def test_metadata_has_explicit_ids(flat_index: CaptionIndex) -> None:
    import pyarrow.parquet as pq

    table = pq.read_table(flat_index.root / "metadata.parquet")
    assert table.column_names == ["id", "caption", "record"]
    assert table.column("id").to_pylist() == list(range(3000))
    ids = np.load(flat_index.root / "embeddings" / "ids-00001.npy")
    assert ids.tolist() == list(range(1000, 2000))


@pytest.mark.parametrize(
    "factory,min_recall",
    [("IVF32,Flat", 0.95), ("IVF32,SQ8", 0.9), ("IVF16,PQ8", 0.5), ("HNSW16", 0.95)],
)
def test_approximate_indexes_against_exact(
    tmp_path: Path, corpus_path, table_encoder, vectors, queries, factory, min_recall
) -> None:
    index = build_index(
        corpus_path,
        table_encoder,
        tmp_path / "ix",
        factory=factory,
        shard_size=1000,
        tune_queries=200,
        target_recall=0.95,
    )
    tuning = index.manifest["tuning"]
    assert index.manifest["factory"] == factory
    assert tuning["params"]  # something was tuned (nprobe or efSearch)
    fresh = clustered_vectors(1000, 32, seed=11, centres_seed=0)  # stable estimate: 1000 queries
    res = index.search(fresh, k=10)
    _, ref_i = brute_force(vectors, fresh, 10)
    recall = recall_at_k(res.ids, ref_i, 10)
    assert recall >= min_recall - 0.015, (factory, recall, tuning)
    if tuning["reached"]:
        assert tuning["recall"] >= 0.95
    # more probes: recall grows (up to approximate-distance noise for PQ codes)
    curve = [c["recall"] for c in tuning["curve"]]
    assert all(b >= a - 0.02 for a, b in zip(curve, curve[1:], strict=False)), curve


@pytest.mark.slow
def test_auto_ivf_and_opq_pq_builds(
    tmp_path: Path, corpus_path, table_encoder, vectors, queries
) -> None:
    auto = build_index(
        corpus_path,
        table_encoder,
        tmp_path / "auto",
        max_memory="300K",
        shard_size=1000,
        tune_queries=200,
    )
    assert auto.manifest["factory"].startswith("IVF") and auto.manifest["tuning"]["reached"]
    opq = build_index(
        corpus_path,
        table_encoder,
        tmp_path / "opq",
        factory="OPQ8,IVF16_HNSW32,PQ8",
        shard_size=1000,
        tune_queries=200,
    )
    assert "quantizer_efSearch" in opq.search_params
    _, ref_i = brute_force(vectors, queries, 10)
    assert recall_at_k(opq.search(queries, 10).ids, ref_i, 10) >= 0.5


def test_rebuild_reuses_and_refuses(tmp_path: Path, corpus_path, table_encoder) -> None:
    out = tmp_path / "ix"
    first = build_index(corpus_path, table_encoder, out, shard_size=1000, tune_queries=100)
    before = table_encoder.n_encoded
    again = build_index(corpus_path, table_encoder, out, shard_size=1000, tune_queries=100)
    assert table_encoder.n_encoded == before and again.manifest == first.manifest
    with pytest.raises(IndexMismatchError, match="overwrite=True"):
        build_index(corpus_path, table_encoder, out, factory="IVF8,Flat", shard_size=1000)
    rebuilt = build_index(
        corpus_path,
        table_encoder,
        out,
        factory="IVF8,Flat",
        shard_size=1000,
        tune_queries=100,
        overwrite=True,
    )
    assert rebuilt.manifest["factory"] == "IVF8,Flat"


def test_empty_corpus_is_a_clear_error(tmp_path: Path) -> None:
    corpus = write_lines(tmp_path / "empty.txt", ["", "   ", ""])
    with pytest.raises(InvalidParameterError, match="yielded no captions"):
        build_index(corpus, HashEncoder(16), tmp_path / "ix")


def test_bad_factory_and_options(tmp_path: Path, corpus_path, table_encoder) -> None:
    with pytest.raises(InvalidParameterError, match="factory string 'Nonsense12'"):
        build_index(
            corpus_path, table_encoder, tmp_path / "a", factory="Nonsense12", shard_size=1000
        )
    with pytest.raises(InvalidParameterError, match="target_recall"):
        build_index(corpus_path, table_encoder, tmp_path / "b", target_recall=1.5)
