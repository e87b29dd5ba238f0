"""Synthetic stage-1 output: float16 shards and a build state, written without an encoder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zsvl.index.shards import write_shard
from zsvl.index.storage import write_state


def mixture(n: int, dim: int, centres: np.ndarray, seed: int, noise: float = 0.9) -> np.ndarray:
    """``n`` unit vectors (n, dim): a random centre plus isotropic noise of norm ~``noise``."""
    rng = np.random.default_rng(seed)
    x = centres[rng.integers(len(centres), size=n)]
    x = x + (noise / np.sqrt(dim)) * rng.standard_normal((n, dim), dtype=np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def centres(count: int, dim: int, seed: int = 0) -> np.ndarray:
    c = np.random.default_rng(seed).standard_normal((count, dim), dtype=np.float32)
    return c / np.linalg.norm(c, axis=1, keepdims=True)


def write_encoded(out: Path, vectors: np.ndarray, shard: int = 8192) -> Path:
    """Write ``vectors`` (n, dim) as the shards + state a finished stage 1 leaves in ``out``."""
    folder = out / "embeddings"
    folder.mkdir(parents=True, exist_ok=True)
    infos = []
    for s, lo in enumerate(range(0, len(vectors), shard)):
        ids = np.arange(lo, min(len(vectors), lo + shard), dtype=np.int64)
        infos.append(write_shard(folder, s, vectors[ids], ids, [f"c {i}" for i in ids]).as_dict())
    settings = {
        "corpus": {"path": "synthetic"},
        "encoder": {"fingerprint": f"synthetic-{vectors.shape[1]}", "embed_dim": vectors.shape[1]},
        "shard_size": shard,
    }
    state = {"settings": settings, "shards": infos, "encoded": True, "corpus_stats": {},
             "encode_seconds": 0.0, "model": None}  # fmt: skip
    write_state(out, state)
    return out
