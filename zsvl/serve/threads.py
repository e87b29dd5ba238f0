"""How many intra-op threads the model thread's calls get.

The model thread shares the machine with the event loop, which parses requests and writes
responses while a forward runs. Two kinds of model call want different things:

- a short call (one query, a small batch, the toy model) gains little from more OpenMP threads,
  and a thread that the event loop or another process pre-empts stalls every op at its barrier.
  On the 2-core development machine (``benchmarks/bench_serve.py``), the toy model's server
  answered 346 single queries/s with one thread and 263 with two; ViT-B-32's text tower took
  35.6 ms per query on one thread and 32.7 ms on two on the quiet machine, but 3-5x longer on
  two while other processes loaded it.
- a long call (a batch of 32 queries through a real model) is arithmetic, and the event loop is
  nearly idle while it runs: ViT-B-32's batch of 32 took 520 ms on one thread, 330 ms on two.

:class:`ThreadPolicy` times each kind of call by batch-size bucket on the base thread count and
gives the buckets that took at least ``long_call_s`` the long-call thread count.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["ThreadPolicy", "default_threads", "usable_cores", "set_model_threads"]

LONG_CALL_S = 0.05


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_threads() -> int:
    """Base intra-op threads for the model thread: the usable cores less one, at least 1."""
    return max(1, usable_cores() - 1)


def set_model_threads(threads: int) -> None:
    """Set torch's (and FAISS's) intra-op threads; process-wide, called on the model thread."""
    import torch

    torch.set_num_threads(threads)
    try:
        import faiss
    except ImportError:
        return
    faiss.omp_set_num_threads(threads)


def _bucket(size: int) -> int:
    return (max(size, 1) - 1).bit_length()  # 1 -> 0, 2 -> 1, 3-4 -> 2, 5-8 -> 3, ...


class ThreadPolicy:
    """Intra-op threads per model call: ``base`` for short calls, ``long`` for long ones.

    A (kind, batch-size bucket) runs on ``base`` threads until ``timings`` calls of it have been
    timed there; when the fastest of them took at least ``long_call_s``, later calls of the
    bucket get ``long`` threads. The fastest, because a slow outlier (a first call, a page fault,
    the machine's other work) is never fast: one 73 ms lone query of the toy model must not give
    every later one all the cores. Only calls on ``base`` threads are timed, so a bucket does
    not flip back because the extra threads made it fast.
    """

    def __init__(
        self, base: int, long: int, *, long_call_s: float = LONG_CALL_S, timings: int = 3
    ) -> None:
        if base < 1 or long < base or timings < 1:
            raise ValueError(
                f"1 <= base <= long and timings >= 1 are required. Got base={base}, "
                f"long={long}, timings={timings}."
            )
        self.base = base
        self.long = long
        self.long_call_s = long_call_s
        self.timings = timings
        self._base_seconds: dict[tuple[str, int], list[float]] = {}
        self._current = base

    def _is_long(self, key: tuple[str, int]) -> bool:
        seen = self._base_seconds.get(key, [])
        return len(seen) >= self.timings and min(seen) >= self.long_call_s

    def threads_for(self, kind: str, size: int) -> int:
        return self.long if self._is_long((kind, _bucket(size))) else self.base

    def record(self, kind: str, size: int, threads: int, seconds: float) -> None:
        if threads == self.base:
            seen = self._base_seconds.setdefault((kind, _bucket(size)), [])
            seen.append(seconds)
            del seen[: -self.timings]  # the latest ``timings`` only

    @contextmanager
    def call(self, kind: str, size: int) -> Iterator[int]:
        """Run a model call of ``size`` items with the threads its bucket gets (yielded)."""
        threads = self.threads_for(kind, size)
        if threads != self._current:
            set_model_threads(threads)
            self._current = threads
        t0 = time.perf_counter()
        yield threads
        self.record(kind, size, threads, time.perf_counter() - t0)

    def to_dict(self) -> dict[str, object]:
        return {
            "base": self.base,
            "long": self.long,
            "long_call_s": self.long_call_s,
            "long_buckets": sorted(
                f"{kind}:{1 << b}" for kind, b in self._base_seconds if self._is_long((kind, b))
            ),
        }
