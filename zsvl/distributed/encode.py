"""Stage 1 on Ray: the driver streams caption blocks to a pool of encoder actors.

Ray tasks read the corpus in independent ranges (byte ranges cut at line boundaries, or
Parquet row groups) with the same reader code as a single-machine build
(:func:`~zsvl.data.caption_ranges.read_range`); the driver merges them in file order
(:mod:`zsvl.distributed.ranges`: deduplication by hash, dense ids, one block per shard, so the
blocks are those of :meth:`CaptionCorpus.iter_blocks`) and hands each block to Ray's
:class:`~ray.util.ActorPool`. At most ``engine.read_tasks`` ranges are read ahead and two blocks
per actor are in flight, so reading overlaps encoding and memory stays bounded. A gzip'd corpus
cannot be cut; the driver reads it in one sequential pass. The actors are created with
``max_restarts=-1, max_task_retries=-1``: when a worker process or node dies, Ray restarts the
actor and re-runs its unfinished shards, which rewrite the same shard files.

Resumption is the single-machine one: ``build_state.json`` lists the finished shards in order
(the dense prefix, which the local encoder also understands) and the shards finished ahead of a
gap under ``shards_ahead``; a re-run skips both.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from zsvl._progress import progress_bar, progress_line
from zsvl.data.caption_ranges import RangeRead, read_range
from zsvl.data.captions import CaptionBlock, CaptionCorpus
from zsvl.distributed.ranges import plan_ranges, read_in_ranges
from zsvl.errors import InvalidParameterError, ZsvlError
from zsvl.index.encode import _start_state, encoder_info, estimate_records, model_name
from zsvl.index.shards import ShardInfo
from zsvl.index.storage import EMBEDDINGS_DIR, write_state

__all__ = ["encode_to_shards_ray"]

logger = logging.getLogger(__name__)


def _pool(
    engine: Any, ray: Any, encoder: Any, out: Path, batch_size: int, model: str | None
) -> tuple[Any, Any, list[Any]]:
    """An ActorPool with two slots per encoder actor, the object ref of the encoder source (held
    by the caller for the pool's life: a restarted actor reads its arguments again), the actors."""
    from ray.util import ActorPool

    from zsvl.distributed.cluster import cluster_gpus
    from zsvl.distributed.workers import EncoderSource, ShardEncoder

    gpus = engine.gpus_per_actor
    if gpus is None:
        gpus = 1.0 if cluster_gpus(ray) > 0 else 0.0
    if engine.actors is not None:
        n = engine.actors
    elif gpus > 0:
        n = max(1, int(cluster_gpus(ray) // gpus))
    else:
        n = max(1, int(ray.cluster_resources().get("CPU", 1) // engine.cpus_per_actor))
    source = EncoderSource(encoder, model)
    source_ref = ray.put(source)
    cls = ray.remote(ShardEncoder).options(
        num_cpus=engine.cpus_per_actor, num_gpus=gpus, max_restarts=-1, max_task_retries=-1
    )
    device = "cuda" if gpus > 0 else "cpu"
    actors = [
        cls.remote(source_ref, str(out / EMBEDDINGS_DIR), batch_size, device, engine.hook)
        for _ in range(n)
    ]
    logger.info("%d encoder actors (%s CPU, %s GPU each).", n, engine.cpus_per_actor, gpus)
    return ActorPool(actors + actors), source_ref, actors


class _Tracker:
    """Records finished shards in the build state (dense prefix + those ahead) and reports."""

    def __init__(
        self,
        out: Path,
        state: dict[str, Any],
        bar: Any,
        on_shard: Callable[[ShardInfo], None] | None,
    ) -> None:
        self.out, self.state, self.bar, self.on_shard = out, state, bar, on_shard
        self.ahead = {s["index"]: s for s in state.get("shards_ahead", [])}
        self.workers: dict[str, list[float]] = {}
        self.start = time.perf_counter()

    def done(self) -> set[int]:
        return {s["index"] for s in self.state["shards"]} | set(self.ahead)

    def record(self, result: dict[str, Any]) -> None:
        info = result["info"]
        self.ahead[info["index"]] = info
        shards = self.state["shards"]
        while len(shards) in self.ahead:
            shards.append(self.ahead.pop(len(shards)))
        self.state["shards_ahead"] = [self.ahead[i] for i in sorted(self.ahead)]
        write_state(self.out, self.state)
        rows, seconds = info["rows"], max(result["seconds"], 1e-9)
        stats = self.workers.setdefault(result["worker"], [0.0, 0.0])
        stats[0] += rows
        stats[1] += seconds
        self.bar.update(1)
        total = sum(r for r, _ in self.workers.values())
        self.bar.set_postfix_str(
            f"{total / (time.perf_counter() - self.start):.0f} captions/s, "
            f"{len(self.workers)} workers",
            refresh=False,
        )
        progress_line(
            f"shard {info['index']}: {rows} captions on {result['worker']} "
            f"({rows / seconds:.0f} captions/s)"
        )
        if self.on_shard is not None:
            self.on_shard(ShardInfo(**info))

    def summary(self) -> None:
        for worker, (rows, seconds) in sorted(self.workers.items()):
            line = (
                f"worker {worker}: {rows:.0f} captions, {rows / max(seconds, 1e-9):.0f} captions/s"
            )
            logger.info(line)
            progress_line(line)


def _read_range(corpus: CaptionCorpus, start: int, end: int, context: dict[str, Any]) -> RangeRead:
    """One range of the corpus, read in a Ray task (the same reader as a sequential read)."""
    if not Path(corpus.path).is_file():
        raise InvalidParameterError(
            f"The caption corpus {str(corpus.path)!r} is not visible on a worker node; put it on "
            f"storage every node mounts at the same path (like --out)."
        )
    return read_range(corpus, start, end, context)


def _read_blocks(
    engine: Any, ray: Any, corpus: CaptionCorpus, shard_size: int
) -> Iterator[CaptionBlock]:
    """The corpus's blocks of ``shard_size`` captions, read by Ray tasks in parallel ranges and
    merged in order by the driver (the blocks of ``corpus.iter_blocks(shard_size)``)."""
    if plan_ranges(corpus, engine.range_bytes) is None:
        line = f"{corpus.path} is gzip'd and cannot be cut: the driver reads it sequentially"
        logger.info(line)
        progress_line(line)
        yield from corpus.iter_blocks(shard_size)
        return
    task = ray.remote(_read_range).options(
        num_cpus=0, scheduling_strategy="SPREAD", max_retries=3, retry_exceptions=False
    )
    started = [0]

    def read(plan: list[tuple[int, int]], context: dict[str, Any]) -> Iterator[RangeRead]:
        corpus_ref = ray.put(corpus)
        pending: deque[Any] = deque()
        for start, end in plan:
            pending.append(task.remote(corpus_ref, start, end, context))
            started[0] += 1
            if len(pending) >= engine.read_tasks:
                yield ray.get(pending.popleft())
        while pending:
            yield ray.get(pending.popleft())

    yield from read_in_ranges(corpus, shard_size, engine.range_bytes, read)
    line = f"read {corpus.path} in {started[0]} parallel range tasks"
    logger.info(line)
    progress_line(line)


def _unwrap(exc: BaseException) -> BaseException:
    """The zsvl error inside a Ray task or actor error (raised in a worker), if there is one."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, ZsvlError):
            return e
        todo += [getattr(e, "cause", None), e.__cause__, getattr(e, "_cause", None)]
        todo += [a for a in getattr(e, "args", ()) if isinstance(a, BaseException)]
    return exc


def encode_to_shards_ray(
    engine: Any,
    corpus: CaptionCorpus,
    encoder: Any,
    out: str | Path,
    *,
    shard_size: int = 65536,
    batch_size: int = 256,
    resume: bool = True,
    on_shard: Callable[[ShardInfo], None] | None = None,
    model: str | None = None,
) -> dict[str, Any]:
    """Encode every kept caption of ``corpus`` into ``<out>/embeddings`` on the cluster.

    Same shards, ids, state file and result as :func:`zsvl.index.encode.encode_to_shards`.
    """
    from zsvl.distributed.cluster import RayClusterError

    if not isinstance(shard_size, int) or shard_size < 1:
        raise InvalidParameterError(f"shard_size must be an int >= 1. Got {shard_size!r}.")
    out = Path(out)
    settings = {
        "corpus": corpus.settings(),
        "encoder": encoder_info(encoder),
        "shard_size": shard_size,
    }
    state = _start_state(out, settings, resume)
    state["model"] = model_name(encoder, model)
    (out / EMBEDDINGS_DIR).mkdir(parents=True, exist_ok=True)
    if state["encoded"]:
        return state
    ray = engine.connect()
    pool, source_ref, actors = _pool(engine, ray, encoder, out.resolve(), batch_size, model)
    total = math.ceil(estimate_records(corpus) / shard_size)
    start = time.perf_counter()
    with progress_bar(total=total, desc="encode", unit="shard") as bar:
        tracker = _Tracker(out, state, bar, on_shard)
        skip = tracker.done()
        bar.update(len(skip))
        try:
            for position, block in enumerate(_read_blocks(engine, ray, corpus, shard_size)):
                if position in skip:
                    continue
                while not pool.has_free():
                    tracker.record(pool.get_next_unordered())
                pool.submit(
                    lambda actor, v: actor.encode.remote(*v),
                    (position, block.captions, block.ids, block.records, block.source_ids),
                )
            while pool.has_next():
                tracker.record(pool.get_next_unordered())
        except ray.exceptions.RayError as exc:
            inner = _unwrap(exc)
            if inner is not exc:
                raise inner from None
            raise RayClusterError(f"Encoding on the cluster failed: {exc}") from exc
        finally:
            for actor in actors:  # free their CPUs/GPUs for the fill now
                ray.kill(actor)
            del pool, source_ref
    tracker.summary()
    if not state["shards"]:
        raise InvalidParameterError(
            f"The corpus {corpus.path} yielded no captions ({corpus.stats.records} records read: "
            f"{corpus.stats.as_dict()}); check the file, format= and column=."
        )
    if state.get("shards_ahead"):
        raise RayClusterError(
            f"Shards {[s['index'] for s in state['shards_ahead']]} were encoded "
            f"but an earlier one is missing; run the build again to resume."
        )
    state["encoded"] = True
    state["corpus_stats"] = corpus.stats.as_dict()
    state["encode_seconds"] += time.perf_counter() - start
    write_state(out, state)
    return state
