"""Test helpers for the embedding cache: a deterministic fake Encoder and real PNG files."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from zsvl.data.images import describe, expand_inputs
from zsvl.errors import ImageLoadError
from zsvl.models.base import EncodedImages, ImageFailure, OnError


def seeded_unit_vector(data: bytes, dim: int) -> np.ndarray:
    """A float32 unit vector of length ``dim`` fully determined by ``data``."""
    seed = int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


class FakeEncoder:
    """Implements the Encoder protocol with hash-seeded vectors and counts what it is asked.

    Texts map to a vector seeded by (fingerprint, text); images to one seeded by their decoded
    RGB pixels, so a file and the same pixels as a PIL image give the same embedding.
    """

    def __init__(self, fingerprint: str = "fake|v1|fp32", dim: int = 16) -> None:
        self._fingerprint = fingerprint
        self._dim = dim
        self.text_calls: list[list[str]] = []  # one list per encode_texts call
        self.image_calls: list[int] = []  # number of expanded inputs per encode_images call

    @property
    def embed_dim(self) -> int:
        return self._dim

    @property
    def logit_scale(self) -> float:
        return 100.0

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    def encode_texts(self, texts: Sequence[str], *, batch_size: int = 256) -> np.ndarray:
        texts = list(texts)
        self.text_calls.append(texts)
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for i, t in enumerate(texts):
            out[i] = seeded_unit_vector(f"{self._fingerprint}\0{t}".encode(), self._dim)
        return out

    def _pixels(self, item: Any) -> bytes:
        if isinstance(item, Path):
            try:
                with Image.open(item) as im:
                    return im.convert("RGB").tobytes()
            except OSError as exc:
                raise ImageLoadError(f"cannot decode {item}: {exc}") from exc
        if isinstance(item, Image.Image):
            return item.convert("RGB").tobytes()
        return np.ascontiguousarray(np.asarray(item)).tobytes()

    def encode_images(
        self, images: Any, *, batch_size: int = 64, on_error: OnError = "raise"
    ) -> EncodedImages:
        items = expand_inputs(images)
        self.image_calls.append(len(items))
        sources = [describe(item, i) for i, item in enumerate(items)]
        rows, indices, failures = [], [], []
        for i, item in enumerate(items):
            try:
                pixels = self._pixels(item)
            except ImageLoadError as exc:
                if on_error == "raise":
                    raise
                failures.append(ImageFailure(i, sources[i], str(exc)))
                continue
            rows.append(seeded_unit_vector(self._fingerprint.encode() + pixels, self._dim))
            indices.append(i)
        emb = np.stack(rows) if rows else np.zeros((0, self._dim), np.float32)
        return EncodedImages(emb, np.asarray(indices, dtype=np.int64), sources, failures)


def write_png(path: Path, seed: int, size: tuple[int, int] = (12, 10)) -> Path:
    """Write a small random RGB PNG at ``path`` and return the path."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path
