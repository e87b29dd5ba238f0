"""Batched search, vectorised metadata lookup, stored embeddings and near-duplicate removal."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from caption_fakes import HashEncoder, brute_force, write_lines  # noqa: E402

from zsvl.errors import InvalidParameterError  # noqa: E402
from zsvl.index import CaptionIndex, build_index  # noqa: E402
from zsvl.index.search import greedy_dedupe  # noqa: E402
from zsvl.index.tune import drop_self, exact_search, recall_at_k  # noqa: E402


def test_batched_equals_one_query_at_a_time(flat_index: CaptionIndex, queries) -> None:
    whole = flat_index.search(queries, 7, batch_size=16)
    for i in range(0, len(queries), 9):
        one = flat_index.search(queries[i : i + 1], 7)
        np.testing.assert_array_equal(one.ids[0], whole.ids[i])
        assert one.captions[0] == whole.captions[i]


def test_stored_embeddings_are_the_encoded_vectors(flat_index: CaptionIndex, vectors) -> None:
    ids = np.array([[0, 2999, -1], [1500, 7, 1000]])
    emb = flat_index.embeddings(ids)
    assert emb.shape == (2, 3, 32)
    np.testing.assert_allclose(emb[0, 0], vectors[0], atol=1e-3)
    np.testing.assert_allclose(emb[1, 2], vectors[1000], atol=1e-3)
    assert not emb[0, 2].any()
    assert flat_index.captions(ids) == [["v 0", "v 2999"], ["v 1500", "v 7", "v 1000"]]


def test_k_larger_than_the_index_pads(tmp_path: Path) -> None:
    enc = HashEncoder(16)
    corpus = write_lines(tmp_path / "c.txt", ["red star", "blue circle", "green square"])
    index = build_index(corpus, enc, tmp_path / "ix", tune_queries=3)
    res = index.search(enc.encode_texts(["red star"]), k=5)
    assert res.ids[0].tolist()[:1] == [0] and res.ids[0, 3:].tolist() == [-1, -1]
    assert np.isneginf(res.scores[0, 3:]).all() and len(res.captions[0]) == 3
    assert index.search_texts(["blue circle"], k=1).captions == [["blue circle"]]


def test_dedupe_drops_near_duplicates_like_a_greedy_reference(tmp_path: Path) -> None:
    enc = HashEncoder(64)
    caps = [
        "a red star",
        "red star",
        "a red star.",
        "red stars",
        "a red star on a table",
        "a blue circle",
        "blue circle",
        "a green square",
        "red star",
        "a red triangle",
    ]
    index = build_index(write_lines(tmp_path / "c.txt", caps), enc, tmp_path / "ix", tune_queries=5)
    q = enc.encode_texts(["a red star"])
    plain = index.search(q, k=6)
    deduped = index.search(q, k=6, dedupe=0.94)
    assert len(set(plain.captions[0]) & {"a red star", "red star", "a red star."}) >= 3
    kept = deduped.captions[0]
    assert sum(c in ("a red star", "red star", "a red star.") for c in kept) == 1
    emb = enc.encode_texts(kept)
    sims = emb @ emb.T - np.eye(len(kept))
    assert sims.max() < 0.94
    # the reference: walk the exact ranking, keep what is not within 0.94 of a kept one
    all_emb = enc.encode_texts(caps)
    order = np.argsort(-(all_emb @ q[0]), kind="stable")
    ref: list[int] = []
    for i in order:
        if all(all_emb[i] @ all_emb[j] < 0.94 for j in ref):
            ref.append(i)
    # equal-scoring duplicates may come in either order, so compare the kept vectors
    np.testing.assert_allclose(emb, all_emb[ref[:6]], atol=1e-6)


def test_greedy_dedupe_vectorised() -> None:
    e = np.eye(3, dtype=np.float32)
    emb = np.stack([e[[0, 0, 1, 2]], e[[0, 1, 1, 1]]])  # (2, 4, 3)
    keep = greedy_dedupe(emb, np.ones((2, 4), bool), 0.94)
    assert keep.tolist() == [[True, False, True, True], [True, True, False, False]]


def test_exact_search_and_recall_helpers(flat_index: CaptionIndex, vectors, queries) -> None:
    s, i = exact_search(flat_index.shards, queries, 10, chunk_rows=700)
    ref_s, ref_i = brute_force(vectors, queries, 10)
    np.testing.assert_array_equal(i, ref_i)
    np.testing.assert_allclose(s, ref_s, atol=1e-5)
    assert recall_at_k(i, ref_i, 10) == 1.0
    assert recall_at_k(i[:, ::-1][:, :5], ref_i, 5) == 0.0
    # ties: a different item with the same score counts as found
    found = np.array([[5, 6]])
    assert recall_at_k(found, np.array([[1, 2]]), 2) == 0.0
    assert (
        recall_at_k(
            found,
            np.array([[1, 2]]),
            2,
            found_scores=np.array([[0.9, 0.8]]),
            kth_scores=np.array([0.8]),
        )
        == 1.0
    )
    assert drop_self(np.array([[3, 1, 2], [4, 5, 6]]), np.array([1, 9]), 2).tolist() == [
        [3, 2],
        [4, 5],
    ]


def test_bad_queries(flat_index: CaptionIndex) -> None:
    with pytest.raises(InvalidParameterError, match="dimension 16 but .* dimension 32"):
        flat_index.search(np.ones((2, 16), np.float32))
    with pytest.raises(InvalidParameterError, match="k must be an int >= 1"):
        flat_index.search(np.ones((2, 32), np.float32), k=0)
    with pytest.raises(InvalidParameterError, match="loaded without an encoder"):
        CaptionIndex.load(flat_index.root).search_texts(["x"])
