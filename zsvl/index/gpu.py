"""GPU FAISS when it is there: train and fill an index on the GPUs, keep the CPU copy.

faiss-cpu builds report zero GPUs, so everything here falls back to the CPU index silently.
Only index types that FAISS implements on the GPU (Flat, IVF-Flat, IVF-SQ8, IVF-PQ without OPQ
or an HNSW quantiser) are moved; for the others the CPU index is used as is.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["gpu_count", "to_gpu", "to_cpu"]

logger = logging.getLogger(__name__)


def gpu_count() -> int:
    """Number of GPUs FAISS can use (0 with faiss-cpu)."""
    import faiss

    getter = getattr(faiss, "get_num_gpus", None)
    try:
        return int(getter()) if getter is not None else 0
    except RuntimeError:  # pragma: no cover - broken CUDA setups
        return 0


def to_gpu(index: Any, use_gpu: bool | None = None) -> tuple[Any, bool]:
    """(index on all GPUs, True), or (the same CPU index, False) when no GPU can take it.

    use_gpu : None means "when available"; False forces the CPU; True asks for the GPU and
    logs a warning when it cannot be had.
    """
    if use_gpu is False:
        return index, False
    if gpu_count() == 0:
        if use_gpu:
            logger.warning("use_gpu=True but FAISS sees no GPU (faiss-cpu?); building on the CPU.")
        return index, False
    import faiss

    try:
        return faiss.index_cpu_to_all_gpus(index), True
    except (RuntimeError, AttributeError) as exc:  # unsupported index type on the GPU
        logger.info("Building on the CPU: this index type cannot move to the GPU (%s).", exc)
        return index, False


def to_cpu(index: Any, on_gpu: bool) -> Any:
    """The CPU copy of an index returned by :func:`to_gpu`."""
    if not on_gpu:
        return index
    import faiss

    return faiss.index_gpu_to_cpu(index)
