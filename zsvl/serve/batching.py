"""Micro-batching: concurrent requests share one model call.

A :class:`MicroBatcher` owns a queue and one worker task on the event loop. ``await
submit(item)`` enqueues an item and waits for its result. The worker takes the first waiting
item, keeps collecting until ``max_batch`` items or ``max_wait_s`` seconds have passed, then runs
``fn(items) -> results`` in the executor (off the event loop) and hands each caller its own
result. Items that arrive while a batch runs wait in the queue and form the next batch, so under
load batches grow by themselves even with ``max_wait_s=0``. ``max_batch=1`` turns batching off
(one model call per request), the baseline of the benchmark.

The wait is only paid when there is company to wait for: after a batch of one (a lone client,
or the first request after a quiet spell) the next item runs at once, so a single client gets
the unbatched latency; as soon as a batch held two or more items, the worker waits again.

If ``fn`` raises, every caller in that batch gets the exception and the worker goes on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Any

from zsvl.serve.limits import RequestError

__all__ = ["MicroBatcher", "BatchStats"]

logger = logging.getLogger(__name__)


class BatchStats:
    """Counters a batcher keeps: batches run, items served, the largest batch seen, and the
    seconds spent in ``fn`` in total and per batch-size bucket (1, 2, 3-4, 5-8, ..., powers of
    two), so that the batch sizes a load actually forms and their cost can be read back."""

    def __init__(self) -> None:
        self.batches = 0
        self.items = 0
        self.largest = 0
        self.busy_s = 0.0
        self.by_size: dict[int, list[float]] = {}  # bucket top -> [batches, items, seconds]

    def add(self, size: int, seconds: float = 0.0) -> None:
        self.batches += 1
        self.items += size
        self.largest = max(self.largest, size)
        self.busy_s += seconds
        top = 1 << (size - 1).bit_length()  # 1, 2, 4, 8, ...: the bucket (top/2, top]
        row = self.by_size.setdefault(top, [0, 0, 0.0])
        row[0] += 1
        row[1] += size
        row[2] += seconds

    def to_dict(self) -> dict[str, Any]:
        mean = self.items / self.batches if self.batches else 0.0
        sizes = {}
        for top in sorted(self.by_size):
            n, items, seconds = self.by_size[top]
            label = str(top) if top <= 2 else f"{top // 2 + 1}-{top}"
            sizes[label] = {
                "batches": int(n),
                "items": int(items),
                "ms_per_batch": round(1000 * seconds / n, 2),
                "ms_per_item": round(1000 * seconds / items, 2),
            }
        return {
            "batches": self.batches,
            "items": self.items,
            "largest_batch": self.largest,
            "mean_batch": round(mean, 2),
            "busy_s": round(self.busy_s, 3),
            "by_size": sizes,
        }


class MicroBatcher:
    """Collects items from concurrent callers into batches for ``fn``.

    fn : called with a list of items (1 <= len <= max_batch) in the executor; returns a sequence
        of results, one per item, in order.
    max_batch : most items per call (1 = no batching).
    max_wait_s : how long the first item of a batch waits for company.
    max_queue : items waiting beyond this get a 503 ``RequestError`` at once.
    executor : where ``fn`` runs; one thread keeps model calls serial.
    """

    def __init__(
        self,
        fn: Callable[[list[Any]], Sequence[Any]],
        *,
        max_batch: int = 64,
        max_wait_s: float = 0.005,
        max_queue: int = 1024,
        executor: Executor | None = None,
        name: str = "batcher",
    ) -> None:
        if max_batch < 1 or max_wait_s < 0 or max_queue < 1:
            raise ValueError("max_batch >= 1, max_wait_s >= 0 and max_queue >= 1 are required.")
        self.fn = fn
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self.executor = executor
        self.name = name
        self.stats = BatchStats()
        self._queue: deque[tuple[Any, asyncio.Future]] = deque()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._last_size = 0  # items in the batch run last (0: none yet)

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker on the running event loop (idempotent)."""
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Stop the worker; callers still waiting get a 503 error."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        while self._queue:
            _, fut = self._queue.popleft()
            if not fut.done():
                fut.set_exception(RequestError(503, "shutting_down", "The server is stopping."))

    # -- callers -------------------------------------------------------------------------
    async def submit(self, item: Any) -> Any:
        """Queue ``item`` and wait for ``fn``'s result for it."""
        if len(self._queue) >= self.max_queue:
            raise RequestError(
                503,
                "busy",
                f"The server has {len(self._queue)} requests waiting "
                "for the model; retry in a moment.",
            )
        self.start()
        fut = asyncio.get_running_loop().create_future()
        self._queue.append((item, fut))
        assert self._wake is not None
        self._wake.set()
        return await fut

    def _timed(self, items: list[Any]) -> tuple[Sequence[Any], float]:
        t0 = time.perf_counter()
        results = self.fn(items)
        return results, time.perf_counter() - t0

    # -- worker --------------------------------------------------------------------------
    def _should_wait(self) -> bool:
        """Wait for company only when the queue is not full and the last batch had some."""
        return self.max_wait_s > 0 and len(self._queue) < self.max_batch and self._last_size > 1

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._wake is not None
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            if self._should_wait():
                deadline = time.monotonic() + self.max_wait_s
                while len(self._queue) < self.max_batch:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._wake.clear()
                    try:
                        await asyncio.wait_for(self._wake.wait(), left)
                    except asyncio.TimeoutError:
                        break
            batch = [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]
            batch = [(item, fut) for item, fut in batch if not fut.cancelled()]
            if not batch:
                continue
            items = [item for item, _ in batch]
            try:
                results, seconds = await loop.run_in_executor(self.executor, self._timed, items)
                if len(results) != len(items):
                    raise RuntimeError(
                        f"{self.name}: {len(results)} results for {len(items)} items"
                    )
            except asyncio.CancelledError:
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(
                            RequestError(503, "shutting_down", "The server is stopping.")
                        )
                raise
            except Exception as exc:  # noqa: BLE001 - delivered to the callers, worker goes on
                logger.exception("%s: a batch of %d failed", self.name, len(items))
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            self._last_size = len(items)
            self.stats.add(len(items), seconds)
            for (_, fut), result in zip(batch, results, strict=True):
                if not fut.done():
                    fut.set_result(result)
