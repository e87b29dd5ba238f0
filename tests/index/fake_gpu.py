"""A stand-in for FAISS's GPU calls: each is replaced at zsvl.index.gpu by its CPU equivalent.

``FakeGpuIndex`` behaves like a GPU index where zsvl touches it (train, add, add_with_ids,
search, ntotal, is_trained, nlist) but, like a real ``GpuIndexIVF``, it is not a CPU
``faiss.Index``: ``faiss.extract_index_ivf`` does not know it.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class FakeGpuIndex:
    def __init__(self, cpu: Any) -> None:
        self.cpu = cpu
        self.searches = 0
        self.params: list[str] = []

    @property
    def is_trained(self) -> bool:
        return self.cpu.is_trained

    @property
    def ntotal(self) -> int:
        return self.cpu.ntotal

    @property
    def d(self) -> int:
        return self.cpu.d

    @property
    def nlist(self) -> int:  # GpuIndexIVF exposes its list count directly
        import faiss

        return faiss.extract_index_ivf(self.cpu).nlist

    def train(self, x: np.ndarray) -> None:
        self.cpu.train(x)

    def add(self, x: np.ndarray) -> None:
        self.cpu.add(x)

    def add_with_ids(self, x: np.ndarray, ids: np.ndarray) -> None:
        self.cpu.add_with_ids(x, ids)

    def search(self, x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if k > 2048:  # like FAISS's GPU k-selection
            raise RuntimeError("GPU index only supports k <= 2048")
        self.searches += 1
        return self.cpu.search(x, k)


def install(monkeypatch: Any, *, refuse_params: bool = False) -> list[FakeGpuIndex]:
    """Make zsvl.index.gpu see one GPU; returns the list of fake GPU indexes created."""
    import faiss

    from zsvl.index import gpu

    made: list[FakeGpuIndex] = []

    def cpu_to_gpus(index: Any) -> FakeGpuIndex:
        made.append(FakeGpuIndex(faiss.clone_index(index)))
        return made[-1]

    def set_params(index: FakeGpuIndex, params: str) -> None:
        if refuse_params:
            raise RuntimeError("nprobe beyond the GPU limit")
        index.params.append(params)
        faiss.ParameterSpace().set_index_parameters(index.cpu, params)

    monkeypatch.setattr(gpu, "gpu_count", lambda: 1)
    monkeypatch.setattr(gpu, "_cpu_to_gpus", cpu_to_gpus)
    monkeypatch.setattr(gpu, "_gpu_to_cpu", lambda index: faiss.clone_index(index.cpu))
    monkeypatch.setattr(gpu, "set_gpu_search_params", set_params)
    return made
