"""The Ray actor that holds an encoder and turns caption blocks into float16 shards.

One actor per CPU slot (or per GPU); each loads the encoder once, from its model spec (or
receives the driver's encoder when it has no reloadable spec, e.g. random weights or a test
encoder), checks the fingerprint against the driver's, and writes every shard it encodes with
:func:`zsvl.index.shards.write_shard` (atomic files), so a retried shard simply overwrites the
same files. The output folder must be storage every node sees (NFS, a shared disk).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ShardEncoder", "EncoderSource"]


class EncoderSource:
    """How a worker gets the encoder: ``spec`` to load (with ``precision``), or ``encoder`` itself.

    spec : the model spec the user gave ("toy", "ViT-B-32:openai"); without one (or with random
        weights) the driver's encoder itself is shipped to the workers (pickled, once).
    fingerprint : the driver's encoder fingerprint; a worker whose encoder differs refuses to run.
    """

    def __init__(self, encoder: Any, spec: str | None = None) -> None:
        self.fingerprint = str(encoder.fingerprint)
        self.precision = str(getattr(encoder, "precision", "fp32"))
        reloadable = spec is not None and "random-" not in self.fingerprint
        self.spec = spec if reloadable else None
        self.encoder = None if reloadable else encoder

    def load(self, device: str) -> Any:
        if self.spec is None:  # no spec to reload: the driver's encoder was shipped
            return self.encoder
        from zsvl.embed import load_model

        return load_model(self.spec, device=device, precision=self.precision, num_workers=0)


class ShardEncoder:
    """A Ray actor class (wrapped with ``ray.remote`` by the caller): encodes and writes shards.

    folder : the ``embeddings`` folder of the index being built (shared storage).
    hook : optional callable ``hook("encode", shard_number)`` run before each shard (tracing,
        fault-injection tests).
    """

    def __init__(
        self,
        source: EncoderSource,
        folder: str,
        batch_size: int,
        device: str,
        hook: Callable[[str, int], None] | None = None,
    ) -> None:
        from zsvl.distributed.cluster import RayClusterError

        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise RayClusterError(
                f"Worker {socket.gethostname()} cannot see {self.folder}; --out must be on "
                f"storage every Ray node mounts at the same path (NFS, a shared disk)."
            )
        self.encoder = source.load(device)
        if self.encoder.fingerprint != source.fingerprint:
            raise RayClusterError(
                f"Worker {socket.gethostname()} loaded {self.encoder.fingerprint} but the driver "
                f"has {source.fingerprint}; install the same weights on every node."
            )
        self.batch_size = batch_size
        self.hook = hook
        self.name = f"{socket.gethostname()}:{os.getpid()}"

    def encode(
        self,
        position: int,
        captions: list[str],
        ids: np.ndarray,
        records: np.ndarray,
        source_ids: list[str] | None,
    ) -> dict[str, Any]:
        """Encode one block into shard ``position``; returns its ShardInfo dict and timings."""
        from zsvl.index.shards import write_shard

        if self.hook is not None:
            self.hook("encode", position)
        start = time.perf_counter()
        emb = np.asarray(self.encoder.encode_texts(captions, batch_size=self.batch_size))
        info = write_shard(self.folder, position, emb, ids, captions, records, source_ids)
        return {"info": info.as_dict(), "worker": self.name, "seconds": time.perf_counter() - start}
