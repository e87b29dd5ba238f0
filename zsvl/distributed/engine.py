"""``RayEngine``: the options of a cluster build, and the two stages it runs on the cluster.

``build_index(..., engine="ray")`` (or ``engine=RayEngine(address="10.0.0.5:6379", actors=8)``)
hands stage 1 (encoding) and the fill step of stage 2 to this object; choosing the factory,
training on a random sample across shards, tuning and the manifest stay the single-machine code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zsvl.errors import InvalidParameterError

__all__ = ["RayEngine", "resolve_engine"]


@dataclass(frozen=True)
class RayEngine:
    """Where and how a build runs on Ray. Every field has a working default.

    The output directory must be on storage every node mounts at the same path.
    """

    address: str | None = None  # None: Ray's default; "local", "auto" or "HOST:PORT"
    actors: int | None = None  # encoder actors (default: one per GPU, else per cpus_per_actor CPUs)
    cpus_per_actor: float = 1.0  # CPUs each encoder actor reserves (its torch threads)
    gpus_per_actor: float | None = None  # None: 1 when the cluster has GPUs, else 0
    num_cpus: int | None = None  # CPUs of a new local cluster (implies "local" when no address)
    fill_parts: int | None = None  # part indexes filled in parallel (default: cluster CPUs)
    merge: str = "auto"  # "memory", "ondisk" (faiss.contrib.ondisk), or "auto" by size
    hook: Callable[[str, int], None] | None = None  # run in workers before each unit (tests)
    range_bytes: int = 64 << 20  # the corpus is read by Ray tasks in ranges of about this size
    read_tasks: int = 4  # ranges read ahead of the encoders (bounds the driver's memory)

    def __post_init__(self) -> None:
        if self.merge not in ("auto", "memory", "ondisk"):
            raise InvalidParameterError(
                f"merge must be 'auto', 'memory' or 'ondisk'. Got {self.merge!r}."
            )
        for name in ("range_bytes", "read_tasks"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise InvalidParameterError(f"{name} must be an int >= 1. Got {value!r}.")
        for name in ("actors", "fill_parts", "num_cpus"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise InvalidParameterError(f"{name} must be an int >= 1 or None. Got {value!r}.")
        if self.cpus_per_actor <= 0:
            raise InvalidParameterError(f"cpus_per_actor must be > 0. Got {self.cpus_per_actor!r}.")

    def connect(self) -> Any:
        from zsvl.distributed.cluster import connect

        return connect(self.address, num_cpus=self.num_cpus)

    def encode_to_shards(
        self, corpus: Any, encoder: Any, out: str | Path, **kwargs: Any
    ) -> dict[str, Any]:
        """Stage 1 on the cluster; same arguments and result as
        :func:`zsvl.index.encode.encode_to_shards`."""
        from zsvl.distributed.encode import encode_to_shards_ray

        return encode_to_shards_ray(self, corpus, encoder, out, **kwargs)

    def fill(self, index: Any, shards: Any, chunk_rows: int, skip: Any = None) -> Any:
        """Fill the trained empty ``index`` with every shard on the cluster; returns the filled
        CPU index (part indexes merged)."""
        from zsvl.distributed.fill import fill_on_ray

        return fill_on_ray(self, index, shards, chunk_rows, skip)


def resolve_engine(engine: Any) -> RayEngine | None:
    """None for the single-machine build ("local"); a :class:`RayEngine` for "ray" or one given."""
    if engine is None or engine == "local":
        return None
    if engine == "ray":
        return RayEngine()
    if isinstance(engine, RayEngine):
        return engine
    raise InvalidParameterError(
        f"engine must be 'local', 'ray' or a zsvl.distributed.RayEngine. Got {engine!r}."
    )
