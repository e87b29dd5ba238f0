"""Test doubles for the caption-index tests: a deterministic bag-of-words text Encoder.

Each lower-cased word maps to a fixed random vector (seeded by its hash); a text's embedding is
the normalised sum of its words' vectors, so captions that share words are close and identical
texts are identical vectors. It runs in microseconds and gives the same vectors in any process
(the kill-and-resume test relies on that).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

_WORD = re.compile(r"[a-z]+")
_STOP = {"a", "an", "the", "of", "photo", "on", "with", "is", "that", "there"}


def word_vector(word: str, dim: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
    return np.random.default_rng(seed).standard_normal(dim).astype(np.float32)


class HashEncoder:
    """Implements the Encoder protocol for texts; counts encoded texts in ``n_encoded``."""

    def __init__(self, dim: int = 32, *, name: str = "hash") -> None:
        self.dim = dim
        self.name = name
        self.n_encoded = 0
        self.calls = 0
        self._cache: dict[str, np.ndarray] = {}

    @property
    def embed_dim(self) -> int:
        return self.dim

    @property
    def logit_scale(self) -> float:
        return 100.0

    @property
    def fingerprint(self) -> str:
        return f"{self.name}-encoder|dim={self.dim}"

    def _word(self, word: str) -> np.ndarray:
        if word not in self._cache:
            self._cache[word] = word_vector(word, self.dim)
        return self._cache[word]

    def encode_texts(self, texts: Sequence[str], *, batch_size: int = 256) -> np.ndarray:
        self.calls += 1
        self.n_encoded += len(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            words = [w for w in _WORD.findall(text.lower()) if w not in _STOP] or ["<empty>"]
            out[i] = np.sum([self._word(w) for w in words], axis=0)
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def encode_images(self, images, *, batch_size: int = 64, on_error: str = "raise"):
        raise NotImplementedError("HashEncoder encodes texts only; pass image embeddings.")


COLOURS = ["red", "green", "blue", "yellow", "purple", "orange"]
SHAPES = ["circle", "square", "triangle", "star", "hexagon", "arrow"]
FRAMES = [
    "a photo of a {}.",
    "{}.",
    "a picture of a {} on a table",
    "there is a {}",
    "a close-up photo of a {}",
]


def toy_captions(n: int, seed: int = 0) -> list[str]:
    """``n`` captions like "a picture of a red star on a table" (colour + shape + frame)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        c, s, f = rng.integers(len(COLOURS)), rng.integers(len(SHAPES)), rng.integers(len(FRAMES))
        out.append(FRAMES[f].format(f"{COLOURS[c]} {SHAPES[s]}"))
    return out


def write_lines(path: Path, lines: Sequence[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def clustered_vectors(
    n: int,
    dim: int,
    *,
    clusters: int = 50,
    noise: float = 0.35,
    seed: int = 0,
    centres_seed: int = 0,
) -> np.ndarray:
    """``n`` unit vectors (n, dim) around ``clusters`` random centres (fixed by ``centres_seed``;
    ``seed`` draws the points), distinct, no exact ties."""
    rng = np.random.default_rng(seed)
    centres = (
        np.random.default_rng(10_000 + centres_seed)
        .standard_normal((clusters, dim))
        .astype(np.float32)
    )
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    x = (
        centres[rng.integers(clusters, size=n)]
        + noise * rng.standard_normal((n, dim)).astype(np.float32) / np.sqrt(dim) * 3
    )
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


class TableEncoder:
    """Texts "v <i>" encode to ``vectors[i]``: exact, known vectors behind a caption corpus."""

    def __init__(self, vectors: np.ndarray, *, name: str = "table") -> None:
        self.vectors = np.asarray(vectors, dtype=np.float32)
        self.name = name
        self.n_encoded = 0

    @property
    def embed_dim(self) -> int:
        return self.vectors.shape[1]

    @property
    def logit_scale(self) -> float:
        return 100.0

    @property
    def fingerprint(self) -> str:
        return f"{self.name}-encoder|n={len(self.vectors)}|dim={self.embed_dim}"

    def encode_texts(self, texts: Sequence[str], *, batch_size: int = 256) -> np.ndarray:
        self.n_encoded += len(texts)
        return self.vectors[[int(t.split()[1]) for t in texts]]

    def encode_images(self, images, *, batch_size: int = 64, on_error: str = "raise"):
        raise NotImplementedError


def table_corpus(path: Path, n: int) -> Path:
    """A text corpus whose line i is "v <i>" (pairs with :class:`TableEncoder`)."""
    return write_lines(path, [f"v {i}" for i in range(n)])


def brute_force(vectors: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Reference top-k by inner product with the float16-rounded stored vectors."""
    stored = vectors.astype(np.float16).astype(np.float32)
    scores = queries @ stored.T
    ids = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, ids, 1), ids
