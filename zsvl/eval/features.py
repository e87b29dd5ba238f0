"""Image features of a whole split, encoded once per (model, dataset, split) and reused.

The per-image embedding cache already avoids re-encoding, but it must hash every file; a split
file keeps the whole matrix beside a manifest of the file list (path, size, mtime), so a warm run
reads one array. A changed, added or removed file changes the manifest digest and the split is
re-encoded (through the per-image cache, so only changed images cost a forward pass).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zsvl._atomic import atomic_path
from zsvl.data.splits import Split
from zsvl.models.base import Encoder, ImageFailure
from zsvl.paths import zsvl_home

__all__ = ["SplitFeatures", "split_features"]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1


@dataclass(frozen=True)
class SplitFeatures:
    """Embeddings of the readable images of a split.

    X : float32 (n_ok, dim), L2-normalised. y : int64 (n_ok,). paths : the n_ok source paths.
    failures : images that could not be read (skipped, reported).
    """

    X: np.ndarray
    y: np.ndarray
    paths: list[str]
    failures: list[ImageFailure] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.y)


def _listing_digest(split: Split) -> str:
    digest = hashlib.sha256()
    for path, label in zip(split.paths, split.labels, strict=True):
        try:
            st = os.stat(path)
            stamp = f"{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            stamp = "missing"
        digest.update(f"{path}\0{label}\0{stamp}\n".encode())
    return digest.hexdigest()


def _location(encoder: Encoder, dataset: str, split: str, root: Path | None) -> Path:
    fp = hashlib.sha256(encoder.fingerprint.encode()).hexdigest()[:16]
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in dataset)
    return (root or zsvl_home() / "features") / fp / safe / f"{split}.npz"


def split_features(
    encoder: Encoder,
    dataset: str,
    split: Split,
    *,
    root: Path | None = None,
    batch_size: int = 64,
) -> SplitFeatures:
    """Features of every readable image of ``split``; unreadable images are skipped and listed."""
    path = _location(encoder, dataset, split.name, root)
    digest = _listing_digest(split)
    cached = _read(path, digest, encoder.fingerprint)
    if cached is not None:
        return cached
    if len(split) == 0:
        empty = np.zeros((0, encoder.embed_dim), np.float32)
        return SplitFeatures(empty, np.zeros(0, np.int64), [])
    encoded = encoder.encode_images(split.paths, batch_size=batch_size, on_error="skip")
    for failure in encoded.failures:
        logger.warning("%s/%s: skipped %s (%s)", dataset, split.name, failure.source, failure.error)
    labels = np.asarray(split.labels, dtype=np.int64)[encoded.indices]
    feats = SplitFeatures(
        encoded.embeddings.astype(np.float32),
        labels,
        [str(split.paths[i]) for i in encoded.indices],
        list(encoded.failures),
    )
    _write(path, feats, digest, encoder.fingerprint)
    return feats


def _read(path: Path, digest: str, fingerprint: str) -> SplitFeatures | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if (meta.get("version"), meta.get("listing"), meta.get("fingerprint")) != (
                FORMAT_VERSION,
                digest,
                fingerprint,
            ):
                return None
            X, y = data["X"], data["y"]
            if hashlib.sha256(X.tobytes()).hexdigest() != meta["x_sha256"]:
                raise ValueError("checksum mismatch")
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        logger.warning("Feature file %s is unreadable (%s); re-encoding.", path, exc)
        return None
    failures = [ImageFailure(**f) for f in meta["failures"]]
    return SplitFeatures(X, y, meta["paths"], failures)


def _write(path: Path, feats: SplitFeatures, digest: str, fingerprint: str) -> None:
    meta = {
        "version": FORMAT_VERSION,
        "listing": digest,
        "fingerprint": fingerprint,
        "x_sha256": hashlib.sha256(feats.X.tobytes()).hexdigest(),
        "paths": feats.paths,
        "failures": [f.__dict__ for f in feats.failures],
    }
    with atomic_path(path) as tmp, tmp.open("wb") as fh:
        np.savez(fh, X=feats.X, y=feats.y, meta=np.asarray(json.dumps(meta)))
