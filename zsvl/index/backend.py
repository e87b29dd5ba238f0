"""The FAISS boundary: one import with a clear error, IVF access and search parameters that work
the same for CPU and GPU indexes.

zsvl does not pin a FAISS build: ``pip install 'zsvl[faiss-cpu]'`` or ``'zsvl[faiss-gpu]'`` (or
a conda FAISS) all provide the same ``faiss`` module. GPU-specific calls live in
:mod:`zsvl.index.gpu`, so tests can replace them with their CPU equivalents.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from zsvl.errors import ZsvlError

__all__ = [
    "FaissMissingError",
    "import_faiss",
    "ivf_of",
    "nlist_of",
    "set_search_params",
    "stores_float32",
]


class FaissMissingError(ZsvlError, ImportError):
    """No FAISS build is installed (caption indexes need one)."""


def import_faiss() -> ModuleType:
    """The ``faiss`` module, or a one-line error naming both builds when it is not installed."""
    try:
        import faiss
    except ImportError as exc:
        raise FaissMissingError(
            "Caption indexes need FAISS, which is not installed. Install the CPU build with "
            "pip install 'zsvl[faiss-cpu]', or on a CUDA machine the GPU build with "
            "pip install 'zsvl[faiss-gpu]' (or conda install -c pytorch faiss-gpu). "
            f"({type(exc).__name__}: {exc})"
        ) from exc
    return faiss


def ivf_of(index: Any) -> Any | None:
    """The ``IndexIVF`` inside a CPU index (through OPQ, IDMap, refine wrappers), else None.

    Only CPU indexes: ``faiss.extract_index_ivf`` does not know GPU classes. Read what you need
    from the CPU index before moving it to a GPU (see ``zsvl.index.build``).
    """
    faiss = import_faiss()
    try:
        return faiss.extract_index_ivf(index)
    except (RuntimeError, TypeError):
        return None


def nlist_of(index: Any) -> int:
    """Inverted lists of a CPU or GPU index; 0 for indexes without lists (Flat, HNSW, PQ)."""
    ivf = ivf_of(index)
    if ivf is not None:
        return int(ivf.nlist)
    return int(getattr(index, "nlist", 0) or 0)  # GpuIndexIVF* expose nlist themselves


def stores_float32(index: Any) -> bool:
    """True when a CPU index keeps full float32 vectors (Flat, IVF-Flat, HNSW-Flat), so its
    inner products are exact; False for compressed codes (SQ, PQ) or a transform in front."""
    faiss = import_faiss()
    ivf = ivf_of(index)
    inner = faiss.downcast_index(index)
    if isinstance(inner, faiss.IndexPreTransform):
        return False
    if ivf is not None:
        return ivf is inner and int(ivf.code_size) == 4 * int(ivf.d)
    if isinstance(inner, faiss.IndexHNSW):
        inner = faiss.downcast_index(inner.storage)
    return int(getattr(inner, "code_size", 0) or 0) == 4 * int(index.d)


def set_search_params(index: Any, params: str) -> None:
    """Apply a parameter string such as ``"nprobe=16,quantizer_efSearch=32"`` to a CPU index
    (GPU indexes: :func:`zsvl.index.gpu.apply_search_params`)."""
    if params:
        import_faiss().ParameterSpace().set_index_parameters(index, params)
