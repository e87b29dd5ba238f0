"""Stage 2 of an index build, before filling: what the index is, what to train it on, and
which stored vectors are held out as tuning queries.

Everything here is read from the CPU index, before it moves to a GPU
(``faiss.extract_index_ivf`` only knows CPU classes). The training sample has its own memory
budget (``train_memory``), separate from the filled index's ``max_memory``: it is transient.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from zsvl.errors import InvalidParameterError
from zsvl.index.backend import import_faiss, ivf_of
from zsvl.index.choose import MIN_POINTS_PER_CENTROID

__all__ = [
    "DEFAULT_TRAIN_MEMORY",
    "Plan",
    "plan_for",
    "held_out_count",
    "held_out_ids",
    "train_sample",
    "reserve_lists",
]

logger = logging.getLogger(__name__)

DEFAULT_TRAIN_MEMORY = "auto"  # 2 GiB, raised to what FAISS's minimum of 39 per list needs
AUTO_TRAIN_BYTES = 2 * 2**30
TRAIN_POINTS_PER_LIST = 64  # aimed for; FAISS's guideline is 30-256 per centroid (>= 39 enforced)
PQ_TRAIN_POINTS = 256 * MIN_POINTS_PER_CENTROID  # 256 centroids per PQ/SQ sub-quantiser


@dataclass(frozen=True)
class Plan:
    """What stage 2 knows about the index, read from the CPU index before any GPU move."""

    nlist: int  # inverted lists (0: no IVF)
    with_ids: bool  # vectors go in with explicit ids (IVF); else positionally, in id order


def plan_for(cpu_index: Any) -> Plan:
    ivf = ivf_of(cpu_index)
    return Plan(
        nlist=int(ivf.nlist) if ivf is not None else 0,
        with_ids=ivf is not None,
    )


def held_out_count(n: int, k: int, count: int | np.ndarray) -> int:
    """How many stored vectors to hold out as tuning queries: ``count`` (0 when query embeddings
    are given), at most a tenth of the corpus so that the index tuned without them is nearly
    the final one, and leaving at least ``k + 1`` vectors to search."""
    given = not np.isscalar(count)  # an array of query embeddings: nothing held out
    if given:
        return 0
    return int(min(int(count), n // 10, max(0, n - k - 1)))


def held_out_ids(n: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted random ids (count,) of the stored vectors held out as tuning queries."""
    return np.sort(rng.choice(n, size=count, replace=False)).astype(np.int64)


def train_sample(
    plan: Plan,
    n: int,
    dim: int,
    budget: int | str | None,
    held: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Sorted random ids to train on, never a held-out one, and what was decided.

    Aims for ``TRAIN_POINTS_PER_LIST`` per IVF list (at least ``PQ_TRAIN_POINTS`` for the codes),
    within ``budget`` bytes for the float32 sample plus one transformed copy (OPQ rotation, SQ
    residuals). FAISS needs at least 39 per list: the default budget grows to allow that, an
    explicit one that cannot is an error.
    """
    available = n - len(held)
    lists = max(1, plan.nlist)
    want = min(available, max(TRAIN_POINTS_PER_LIST * lists, PQ_TRAIN_POINTS))
    minimum = min(available, MIN_POINTS_PER_CENTROID * lists)
    per_vector = 2 * 4 * dim
    if budget is None:
        cap = available
    elif budget == "auto":
        cap = max(AUTO_TRAIN_BYTES // per_vector, minimum)
    else:
        cap = int(budget) // per_vector
        if cap < minimum:
            need = minimum * per_vector
            raise InvalidParameterError(
                f"train_memory={budget} bytes holds {cap} training vectors of dim {dim}, but "
                f"{lists} IVF lists need at least {minimum} ({MIN_POINTS_PER_CENTROID} per list). "
                f"Raise train_memory to {need / 2**20:.0f}M or more, or build fewer lists."
            )
    size = int(min(want, cap))
    if size < MIN_POINTS_PER_CENTROID * lists:
        logger.warning(
            "Training %d lists on %d vectors (%d per list): the corpus is too small for this "
            "many lists; FAISS wants >= %d per list. Choose fewer lists (e.g. factory='auto').",
            lists, size, size // lists, MIN_POINTS_PER_CENTROID,
        )  # fmt: skip
    positions = np.sort(rng.choice(available, size=size, replace=False))
    ids = positions + np.searchsorted(held - np.arange(len(held)), positions, side="right")
    info = {
        "points": size,
        "points_per_list": round(size / lists, 1) if plan.nlist else None,
        "train_memory": budget,
        "bytes": size * 4 * dim,
    }
    return ids.astype(np.int64), info


def reserve_lists(index: Any, sample: np.ndarray, n: int) -> None:
    """Reserve each inverted list's capacity from the training sample's list sizes (+10%), so the
    lists do not grow by doubling while filling (which can transiently double their memory)."""
    faiss = import_faiss()
    ivf = ivf_of(index)
    if ivf is None:
        return
    lists = faiss.downcast_InvertedLists(ivf.invlists)
    if not isinstance(lists, faiss.ArrayInvertedLists):
        return
    x = sample
    outer = faiss.downcast_index(index)
    if isinstance(outer, faiss.IndexPreTransform):
        for i in range(outer.chain.size()):
            x = outer.chain.at(i).apply_py(x)
    _, assign = ivf.quantizer.search(np.ascontiguousarray(x, dtype=np.float32), 1)
    expected = np.bincount(assign.ravel(), minlength=ivf.nlist) * (1.1 * n / len(x))
    for list_no, size in enumerate(expected.astype(np.int64)):
        lists.resize(list_no, int(size))  # std::vector keeps its capacity when shrunk back
        lists.resize(list_no, 0)
