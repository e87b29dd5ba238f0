"""Which FAISS index to build: a factory string from the vector count, dimension and memory budget.

The rule (autofaiss-like, with the memory estimate made explicit):

1. Exact ``Flat`` while ``n`` is below ``exact_below`` (1M) and the float32 vectors fit.
2. ``IVF{nlist},Flat`` (exact distances inside the probed lists) while the float32 vectors fit.
3. ``IVF{nlist},SQ8`` (one byte per dimension) while that fits.
4. ``OPQ{m},IVF{nlist}_HNSW32,PQ{m}`` with the largest ``m`` whose codes fit.

``nlist`` is the power of two nearest to 4 sqrt(n) (so about 4k lists at 1M, 16k at 16M and
65k from 256M on), lowered when there are too few vectors to train it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from zsvl.errors import InvalidParameterError

__all__ = ["IndexChoice", "choose_factory", "estimate_index_bytes", "parse_memory", "nlist_for"]

EXACT_BELOW = 1_000_000
MIN_POINTS_PER_CENTROID = 39  # faiss warns below this many training points per centroid
_PQ_M = (64, 48, 32, 24, 16, 12, 8, 4)
_UNITS = {"": 1, "B": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


@dataclass(frozen=True)
class IndexChoice:
    """The chosen index and why."""

    factory: str  # FAISS index_factory string
    estimated_bytes: int  # memory the filled index needs
    reason: str  # one sentence, for logs and the manifest


def parse_memory(value: str | int | float | None) -> int | None:
    """Bytes from ``4G``, ``512M``, ``1.5GB``, ``2GiB`` or a number of bytes; None stays None."""
    if value is None or isinstance(value, int | float):
        if value is not None and value <= 0:
            raise InvalidParameterError(f"A memory budget must be > 0 bytes. Got {value!r}.")
        return None if value is None else int(value)
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([KMGT]?)(I?B)?\s*", str(value).upper())
    if not match or float(match.group(1)) <= 0:
        raise InvalidParameterError(
            f"Cannot read the memory budget {value!r}; write it like 512M, 4G or 1.5GB."
        )
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def nlist_for(n: int) -> int:
    """Inverted lists for ``n`` vectors: a power of two near 4 sqrt(n), trainable from n points."""
    if n < MIN_POINTS_PER_CENTROID:
        return 1
    target = 2 ** round(math.log2(4 * math.sqrt(n)))
    trainable = 2 ** int(math.log2(max(1, n // MIN_POINTS_PER_CENTROID)))
    return int(max(1, min(target, trainable, 65536)))


def estimate_index_bytes(factory: str, n: int, dim: int) -> int:
    """Approximate resident size of ``factory`` filled with ``n`` vectors of dimension ``dim``."""
    f = factory.replace(" ", "")
    nlist = int(m.group(1)) if (m := re.search(r"IVF(\d+)", f)) else 0
    coarse = nlist * dim * 4 + (nlist * 32 * 2 * 4 if "_HNSW" in f else 0)
    ids = 8 * n if nlist or f.startswith("IDMap") else 0
    if (m := re.search(r"PQ(\d+)(?:x(\d+))?$", f)) and not f.endswith("SQ8"):
        code = int(m.group(1)) * int(m.group(2) or 8) // 8
        extra = dim * dim * 4 if f.startswith("OPQ") else 0
        return n * code + ids + coarse + extra + 256 * dim * 4
    if f.endswith("SQ8"):
        code = dim
    elif f.endswith(("SQfp16", "SQ16")):
        code = 2 * dim
    else:
        code = 4 * dim
    graph = n * 32 * 2 * 4 if f.startswith("HNSW") else 0
    return n * code + ids + coarse + graph


def choose_factory(
    n: int,
    dim: int,
    max_memory: str | int | None = None,
    *,
    exact_below: int = EXACT_BELOW,
    trainable: int | None = None,
) -> IndexChoice:
    """Pick a factory string for ``n`` vectors of dimension ``dim`` within ``max_memory`` bytes.

    ``max_memory`` None means no budget (4 GiB is the CLI default). ``trainable`` is how many of
    the vectors can be trained on (the build holds its tuning queries out); the IVF list count
    is sized for it. Raises when even the smallest product-quantised index would not fit.
    """
    if n < 1 or dim < 1:
        raise InvalidParameterError(f"Cannot choose an index for {n} vectors of dimension {dim}.")
    budget = parse_memory(max_memory)
    fits = (
        (lambda f: True)
        if budget is None
        else (lambda f: estimate_index_bytes(f, n, dim) <= budget)
    )

    def pick(factory: str, reason: str) -> IndexChoice:
        return IndexChoice(factory, estimate_index_bytes(factory, n, dim), reason)

    if n < exact_below and fits("Flat"):
        return pick("Flat", f"{n} vectors < {exact_below}: exact search")
    nlist = nlist_for(n if trainable is None else min(n, trainable))
    if nlist < 2:
        if fits("Flat"):
            return pick("Flat", f"too few vectors ({n}) to train an IVF index")
        raise _no_fit(n, dim, budget)
    for factory, what in (
        (f"IVF{nlist},Flat", "float32 vectors"),
        (f"IVF{nlist},SQ8", "8-bit codes"),
    ):
        if fits(factory):
            return pick(factory, f"{n} vectors: IVF with {what} fits the budget")
    for m in _PQ_M:
        if dim % m:
            continue
        factory = f"OPQ{m},IVF{nlist}_HNSW32,PQ{m}"
        if n >= 256 * MIN_POINTS_PER_CENTROID and fits(factory):
            return pick(factory, f"{n} vectors: only {m}-byte PQ codes fit the budget")
    raise _no_fit(n, dim, budget)


def _no_fit(n: int, dim: int, budget: int | None) -> InvalidParameterError:
    smallest = estimate_index_bytes(f"OPQ4,IVF{nlist_for(n)}_HNSW32,PQ4", n, dim)
    return InvalidParameterError(
        f"No index for {n} vectors of dimension {dim} fits max_memory={budget} bytes (the smallest, "
        f"PQ4, needs about {smallest / 2**20:.0f} MiB); raise --max-memory or give --factory."
    )
