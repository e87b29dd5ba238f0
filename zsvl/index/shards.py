"""Float16 embedding shards with explicit ids: written atomically, read memory-mapped.

A shard ``s`` is three files in one folder: ``emb-<s>.npy`` (float16, (rows, dim), L2-normalised
before the cast), ``ids-<s>.npy`` (int64, (rows,)) and ``meta-<s>.parquet`` (``id``, ``caption``,
``record`` and optionally ``source_id``). Each file is written under a temporary name, fsync'ed and
renamed; the caller records the shard in its state file only afterwards, so a shard either is
complete and listed or is ignored (and overwritten) on resume.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zsvl._atomic import atomic_path, atomic_write_bytes
from zsvl._hashing import sha256_bytes
from zsvl.errors import InvalidParameterError

__all__ = [
    "ShardInfo",
    "ShardSet",
    "write_shard",
]


@dataclass(frozen=True)
class ShardInfo:
    """One complete shard as recorded in a state file or manifest."""

    index: int  # shard number
    rows: int  # vectors in the shard
    first_id: int  # smallest id in the shard
    last_id: int  # largest id in the shard
    sha256: str  # of the embedding file

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _npy_bytes(array: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def write_shard(
    folder: Path,
    index: int,
    embeddings: np.ndarray,
    ids: np.ndarray,
    captions: Sequence[str] | None = None,
    records: np.ndarray | None = None,
    source_ids: Sequence[str] | None = None,
) -> ShardInfo:
    """Write shard ``index``: embeddings (rows, dim) stored float16, ids (rows,) int64, metadata."""
    embeddings = np.asarray(embeddings)
    ids = np.asarray(ids, dtype=np.int64)
    if embeddings.ndim != 2 or len(embeddings) != len(ids) or len(ids) == 0:
        raise InvalidParameterError(
            f"A shard needs embeddings (rows, dim) and as many ids; got {embeddings.shape} and "
            f"{ids.shape}."
        )
    emb_bytes = _npy_bytes(embeddings.astype(np.float16))
    if captions is not None:
        _write_meta(folder / f"meta-{index:05d}.parquet", ids, captions, records, source_ids)
    atomic_write_bytes(folder / f"ids-{index:05d}.npy", _npy_bytes(ids))
    atomic_write_bytes(folder / f"emb-{index:05d}.npy", emb_bytes)
    return ShardInfo(index, len(ids), int(ids.min()), int(ids.max()), sha256_bytes(emb_bytes))


def _write_meta(
    path: Path,
    ids: np.ndarray,
    captions: Sequence[str],
    records: Any,
    source_ids: Sequence[str] | None,
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {"id": pa.array(ids, pa.int64()), "caption": pa.array(list(captions), pa.string())}
    columns["record"] = pa.array(
        np.asarray(records if records is not None else ids, dtype=np.int64), pa.int64()
    )
    if source_ids is not None:
        columns["source_id"] = pa.array(list(source_ids), pa.string())
    with atomic_path(path) as tmp:
        pq.write_table(pa.table(columns), tmp)


class ShardSet:
    """Read access to complete shards (memory-mapped); ids must be disjoint and sorted by shard.

    shards : the :class:`ShardInfo` of each shard, in order; folder : where the files are.
    """

    def __init__(self, folder: str | Path, shards: Sequence[ShardInfo], dim: int) -> None:
        self.folder = Path(folder)
        self.shards = list(shards)
        self.dim = int(dim)
        self._starts = np.array([s.first_id for s in self.shards], dtype=np.int64)
        self.contiguous = all(s.last_id - s.first_id + 1 == s.rows for s in self.shards) and all(
            a.last_id + 1 == b.first_id for a, b in zip(self.shards, self.shards[1:], strict=False)
        )

    @property
    def count(self) -> int:
        return sum(s.rows for s in self.shards)

    def embedding_file(self, index: int) -> Path:
        return self.folder / f"emb-{index:05d}.npy"

    def embeddings(self, position: int) -> np.ndarray:
        """The memory-mapped float16 array (rows, dim) of the shard at ``position``.

        Maps are not kept: pages of a mapped file count as resident memory while the map lives,
        so readers drop each map when done and memory stays bounded by one shard.
        """
        info = self.shards[position]
        arr = np.load(self.embedding_file(info.index), mmap_mode="r")
        if arr.shape != (info.rows, self.dim) or arr.dtype != np.float16:
            raise InvalidParameterError(
                f"{self.embedding_file(info.index)} holds {arr.dtype} {arr.shape}; expected "
                f"float16 ({info.rows}, {self.dim}). The shard is damaged; rebuild the index."
            )
        return arr

    def ids(self, position: int) -> np.ndarray:
        return np.load(self.folder / f"ids-{self.shards[position].index:05d}.npy")

    def iter_chunks(self, chunk_rows: int = 65536) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids (m,), float32 embeddings (m, dim)) in id order, at most ``chunk_rows`` at a time."""
        for position in range(len(self.shards)):
            emb = self.embeddings(position)
            ids = self.ids(position)
            for start in range(0, len(ids), chunk_rows):
                stop = start + chunk_rows
                yield ids[start:stop], np.asarray(emb[start:stop], dtype=np.float32)
            del emb

    def gather(self, ids: np.ndarray) -> np.ndarray:
        """Float32 embeddings (len(ids), dim) of the given ids (any shape is flattened); the rows of
        ids < 0 are zero. Needs contiguous ids (dense ids in shard order), as the builder writes."""
        ids = np.asarray(ids, dtype=np.int64).ravel()
        if not self.contiguous:
            raise InvalidParameterError("gather() needs shards with dense, contiguous ids.")
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        valid = (ids >= 0) & (ids < (self.shards[-1].last_id + 1 if self.shards else 0))
        pos = np.searchsorted(self._starts, ids, side="right") - 1
        for p in np.unique(pos[valid]):
            sel = np.flatnonzero(valid & (pos == p))
            rows = ids[sel] - self.shards[p].first_id
            order = np.argsort(rows, kind="stable")  # sorted reads are kinder to the page cache
            emb = self.embeddings(int(p))
            out[sel[order]] = emb[rows[order]]
            del emb
        return out
