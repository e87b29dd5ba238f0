"""GPU FAISS when it is there: train, fill and search on the GPUs, keep a CPU copy on disk.

Every call that only a GPU build of FAISS has goes through this module (``get_num_gpus``,
``index_cpu_to_all_gpus``, ``index_gpu_to_cpu``, ``GpuParameterSpace``), so a test can swap each
one for its CPU equivalent. faiss-cpu builds report zero GPUs and everything falls back to the
CPU index. Only index types FAISS implements on the GPU (Flat, IVF-Flat, IVF-SQ8, IVF-PQ without
OPQ or an HNSW quantiser) are moved; the others stay on the CPU.
"""

from __future__ import annotations

import logging
from typing import Any

from zsvl.index.backend import import_faiss, set_search_params

__all__ = [
    "gpu_count",
    "to_gpu",
    "to_cpu",
    "set_gpu_search_params",
    "apply_search_params",
]

logger = logging.getLogger(__name__)


def gpu_count() -> int:
    """Number of GPUs FAISS can use (0 with faiss-cpu)."""
    faiss = import_faiss()
    getter = getattr(faiss, "get_num_gpus", None)
    try:
        return int(getter()) if getter is not None else 0
    except RuntimeError:  # pragma: no cover - broken CUDA setups
        return 0


def _cpu_to_gpus(index: Any) -> Any:
    return import_faiss().index_cpu_to_all_gpus(index)


def _gpu_to_cpu(index: Any) -> Any:
    return import_faiss().index_gpu_to_cpu(index)


def set_gpu_search_params(index: Any, params: str) -> None:
    """``GpuParameterSpace`` knows GPU IVF indexes (and replicas of them); nprobe and friends."""
    import_faiss().GpuParameterSpace().set_index_parameters(index, params)


def apply_search_params(index: Any, params: str, *, on_gpu: bool) -> None:
    """Apply ``params`` to a CPU index, or (``on_gpu``) to one made by :func:`to_gpu`."""
    if not params:
        return
    if on_gpu:
        set_gpu_search_params(index, params)
    else:
        set_search_params(index, params)


def to_gpu(index: Any, use_gpu: bool | None = None) -> tuple[Any, bool]:
    """(index on all GPUs, True), or (the same CPU index, False) when no GPU can take it.

    use_gpu : None means "when available"; False forces the CPU; True asks for the GPU and
    logs a warning when it cannot be had.
    """
    if use_gpu is False:
        return index, False
    if gpu_count() == 0:
        if use_gpu:
            logger.warning("use_gpu=True but FAISS sees no GPU (faiss-cpu?); using the CPU.")
        return index, False
    try:
        return _cpu_to_gpus(index), True
    except (RuntimeError, AttributeError) as exc:  # unsupported index type on the GPU
        logger.info("Using the CPU: this index type cannot move to the GPU (%s).", exc)
        return index, False


def to_cpu(index: Any, on_gpu: bool) -> Any:
    """The CPU copy of an index returned by :func:`to_gpu`."""
    return _gpu_to_cpu(index) if on_gpu else index
