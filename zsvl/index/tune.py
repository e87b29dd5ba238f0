"""Exact search over stored shards, recall@k, and tuning ``nprobe``/``efSearch`` for a target recall.

The tuner measures, on queries the index has not seen, the recall@k of the index against exact
inner-product search over the stored float16 vectors (not against itself), walks a ladder of
settings from cheap to expensive and keeps the cheapest one that reaches the target. Only the
index build (:mod:`zsvl.index.build`) uses this module.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from zsvl.errors import InvalidParameterError
from zsvl.index.backend import import_faiss, ivf_of, set_search_params
from zsvl.index.shards import ShardSet

__all__ = [
    "exact_search",
    "recall_at_k",
    "per_query_recall",
    "TuneResult",
    "tune_search_params",
    "param_ladder",
    "drop_self",
]

logger = logging.getLogger(__name__)

_MISSING = -1e30  # knn_ground_truth pads short results with -FLT_MAX (inner product)


def exact_search(
    shards: ShardSet,
    queries: np.ndarray,
    k: int,
    *,
    chunk_rows: int = 131072,
    exclude: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force top-``k`` inner products of ``queries`` (q, dim) over every stored vector.

    exclude : sorted-or-not ids left out of the search (vectors held out of the index).
    Streams the shards ``chunk_rows`` at a time through FAISS's
    ``contrib.exhaustive_search.knn_ground_truth`` (on all GPUs when FAISS has them; memory:
    one float32 chunk plus a (q, k) heap). Returns scores (q, k) float32 and ids (q, k) int64,
    best first; -1 ids (and -inf scores) pad short results. Needs dense ids in shard order.
    """
    faiss = import_faiss()
    from faiss.contrib.exhaustive_search import knn_ground_truth

    if not shards.contiguous or (shards.shards and shards.shards[0].first_id != 0):
        raise InvalidParameterError("exact_search needs shards with dense ids starting at 0.")
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    held = np.unique(np.asarray(exclude, dtype=np.int64)) if exclude is not None else None

    def blocks():
        for ids, chunk in shards.iter_chunks(chunk_rows):
            if held is not None and len(held):
                chunk = chunk[~np.isin(ids, held, assume_unique=True)]
            if len(chunk):
                yield np.ascontiguousarray(chunk)

    scores, pos = knn_ground_truth(queries, blocks(), k, metric_type=faiss.METRIC_INNER_PRODUCT)
    scores, pos = np.asarray(scores, dtype=np.float32), np.asarray(pos, dtype=np.int64)
    missing = (pos < 0) | (scores < _MISSING)
    ids = pos
    if held is not None and len(held):  # position among the kept vectors -> id
        kept_before = held - np.arange(len(held))
        ids = pos + np.searchsorted(kept_before, pos, side="right")
    return np.where(missing, -np.inf, scores).astype(np.float32), np.where(missing, -1, ids)


# Measured on the shared 2-core machine (loaded; 100k x 128 float16 shards in 16k-row chunks,
# 1000 queries, k=10, three runs): knn_ground_truth 6.7 / 7.8 / 7.7 s, the former hand-written
# faiss.knn + numpy merge 6.0 / 7.1 / 7.9 s, identical ids and scores. Equal within the noise of
# a busy machine, so the library routine is used: it also runs on the GPUs when FAISS has them.


def drop_self(ids: np.ndarray, self_ids: np.ndarray, k: int) -> np.ndarray:
    """The first ``k`` ids of each row after removing the row's own id (ids (q, k+1))."""
    keep = ids != np.asarray(self_ids)[:, None]
    # stable partition: kept entries first, in order
    order = np.argsort(~keep, axis=1, kind="stable")
    return np.take_along_axis(ids, order, 1)[:, :k]


def per_query_recall(
    found: np.ndarray,
    truth: np.ndarray,
    k: int,
    *,
    found_scores: np.ndarray | None = None,
    kth_scores: np.ndarray | None = None,
    atol: float = 1e-6,
) -> np.ndarray:
    """Fraction of the true top-``k`` found in the returned top-``k``, per query: (q,) floats.

    found, truth : ids (q, >=k). With ``found_scores`` (exact scores of the found ids, (q, >=k))
    and ``kth_scores`` (the exact k-th best score per query, (q,)), ties count: a found item
    scoring at least the k-th best is correct even when exact search returned another item of
    equal score (duplicate captions).
    """
    found, truth = np.asarray(found)[:, :k], np.asarray(truth)[:, :k]
    valid = np.maximum((truth >= 0).sum(1), 1)
    if found_scores is not None and kth_scores is not None:
        kth = np.asarray(kth_scores)[:, None]
        ok = (found >= 0) & (np.asarray(found_scores)[:, :k] >= kth - atol)
        return np.minimum(ok.sum(1), valid) / valid
    hit = (found[:, :, None] == truth[:, None, :]) & (truth[:, None, :] >= 0)
    return hit.any(1).sum(1) / valid


def recall_at_k(found: np.ndarray, truth: np.ndarray, k: int, **ties: Any) -> float:
    """Mean of :func:`per_query_recall` (same arguments)."""
    return float(per_query_recall(found, truth, k, **ties).mean())


def param_ladder(index: Any) -> list[str]:
    """FAISS parameter strings from cheapest to most expensive ("" when nothing is tunable).

    index : a CPU index (tuning runs on the CPU copy of an index built on GPUs).
    """
    faiss = import_faiss()
    ivf = ivf_of(index)
    if ivf is not None:
        powers = {int(round(v)) for e in range(0, 18) for v in (2**e, 1.5 * 2**e)}
        steps = sorted({p for p in powers if 1 <= p <= ivf.nlist} | {ivf.nlist})
        hnsw_q = isinstance(faiss.downcast_index(ivf.quantizer), faiss.IndexHNSW)
        return [
            f"nprobe={p}" + (f",quantizer_efSearch={max(16, 2 * p)}" if hnsw_q else "")
            for p in steps
        ]
    if isinstance(faiss.downcast_index(index), faiss.IndexHNSW):
        return [f"efSearch={e}" for e in (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 1024)]
    return [""]


@dataclass
class TuneResult:
    """The chosen setting and what it achieved on the tuning queries."""

    params: str  # parameter string, "" for exact indexes
    recall: float  # recall@k against exact search, measured on the tuning queries
    recall_stderr: float  # standard error of that mean over the queries
    k: int
    target_recall: float
    reached: bool  # whether ``recall >= target_recall``
    queries: int  # tuning queries used
    ms_per_query_batched: float  # wall time / queries, whole batch at once
    ms_per_query_single: float  # median latency of one query at a time
    curve: list[dict[str, Any]] = field(default_factory=list)  # every setting tried

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _measure(
    index: Any,
    params: str,
    queries: np.ndarray,
    truth: np.ndarray,
    k: int,
    self_ids: np.ndarray | None,
    vectors: Callable | None,
    kth: np.ndarray | None,
) -> dict[str, Any]:
    set_search_params(index, params)
    extra = 1 if self_ids is not None else 0
    start = time.perf_counter()
    _, found = index.search(queries, k + extra)
    seconds = time.perf_counter() - start
    if self_ids is not None:
        found = drop_self(found, self_ids, k)
    found_scores = None
    if vectors is not None and kth is not None:
        emb = vectors(found).reshape(*found.shape, -1)
        found_scores = np.where(found >= 0, np.einsum("qd,qkd->qk", queries, emb), -np.inf)
    per_query = per_query_recall(found, truth, k, found_scores=found_scores, kth_scores=kth)
    stderr = float(per_query.std(ddof=1) / np.sqrt(len(per_query))) if len(per_query) > 1 else 0.0
    return {
        "params": params,
        "recall": float(per_query.mean()),
        "recall_stderr": stderr,
        "ms_per_query": 1000.0 * seconds / max(1, len(queries)),
    }


def tune_search_params(
    index: Any,
    queries: np.ndarray,
    truth: np.ndarray,
    *,
    k: int = 10,
    target_recall: float = 0.95,
    self_ids: np.ndarray | None = None,
    vectors: Callable[[np.ndarray], np.ndarray] | None = None,
    kth_scores: np.ndarray | None = None,
) -> TuneResult:
    """Cheapest setting of the CPU ``index`` whose recall@k on ``queries`` (q, dim) reaches the
    target.

    truth : (q, k) exact ids (self already removed when ``self_ids`` is given: queries that are
        stored in the index find themselves, and their own id is dropped before counting).
    vectors, kth_scores : the stored vectors by id and the exact k-th best score per query, for
        tie-aware recall (see :func:`per_query_recall`); without them ids are matched exactly.
    Walks :func:`param_ladder` from the cheapest setting up (each step ~1.4x the cost of the one
    before) and stops at the first that reaches the target; the index is left set to it. When no
    setting reaches the target, the best one is kept and ``reached`` is False.
    """
    if not 0 < target_recall <= 1:
        raise InvalidParameterError(f"target_recall must be in (0, 1]. Got {target_recall!r}.")
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    ladder = param_ladder(index)
    tried: dict[int, dict[str, Any]] = {}

    def at(i: int) -> dict[str, Any]:
        if i not in tried:
            tried[i] = _measure(index, ladder[i], queries, truth, k, self_ids, vectors, kth_scores)
            logger.info("tuning %s: recall@%d %.4f", ladder[i] or "exact", k, tried[i]["recall"])
        return tried[i]

    for i in range(len(ladder)):  # cheapest first: stops early, costs < ~4x the chosen setting
        if at(i)["recall"] >= target_recall:
            best = i
            break
    else:
        best = max(tried, key=lambda i: tried[i]["recall"])
    chosen = at(best)
    set_search_params(index, chosen["params"])
    single = []
    for q in queries[: min(50, len(queries))]:
        start = time.perf_counter()
        index.search(q[None, :], k)
        single.append(time.perf_counter() - start)
    if chosen["recall"] < target_recall:
        logger.warning(
            "No search setting reached recall@%d %.3f; best %.4f with %r.",
            k,
            target_recall,
            chosen["recall"],
            chosen["params"],
        )
    return TuneResult(
        params=chosen["params"],
        recall=chosen["recall"],
        recall_stderr=chosen["recall_stderr"],
        k=k,
        target_recall=target_recall,
        reached=chosen["recall"] >= target_recall,
        queries=len(queries),
        ms_per_query_batched=chosen["ms_per_query"],
        ms_per_query_single=1000.0 * float(np.median(single)) if single else 0.0,
        curve=[tried[i] for i in sorted(tried)],
    )
