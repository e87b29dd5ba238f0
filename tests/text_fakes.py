"""A bag-of-words text Encoder for descriptor and FuDD tests: texts that share words are close.

Each lower-cased word maps to a fixed random unit vector; a text's embedding is the normalised sum
of its words' vectors (stop words skipped). ``images_of`` draws "image embeddings" around the
embedding of a description, so methods can be checked on data with real structure.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from zsvl.models.base import EncodedImages

_STOP = {"a", "an", "the", "of", "which", "has", "is", "photo", "with", "in", "and", "it"}


def word_vector(word: str, dim: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
    v = np.random.default_rng(seed).standard_normal(dim)
    return (v / np.linalg.norm(v)).astype(np.float32)


class BagOfWordsEncoder:
    """Implements the Encoder protocol for texts; counts the texts it encodes."""

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim
        self.texts_encoded = 0

    @property
    def embed_dim(self) -> int:
        return self.dim

    @property
    def logit_scale(self) -> float:
        return 50.0

    @property
    def fingerprint(self) -> str:
        return f"bag-of-words|{self.dim}"

    def encode_texts(self, texts: Sequence[str], *, batch_size: int = 256) -> np.ndarray:
        self.texts_encoded += len(texts)
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, text in enumerate(texts):
            words = [w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOP]
            v = sum((word_vector(w, self.dim) for w in words), np.zeros(self.dim, np.float32))
            norm = np.linalg.norm(v)
            out[i] = v / norm if norm > 0 else word_vector("<empty>", self.dim)
        return out

    def encode_images(self, images, *, batch_size: int = 64, on_error: str = "raise"):
        X = np.asarray(images, np.float32)
        return EncodedImages(X, np.arange(len(X)), [f"<array {i}>" for i in range(len(X))])

    def images_of(self, texts: Sequence[str], noise: float, seed: int = 0) -> np.ndarray:
        """One unit vector near each text's embedding (Gaussian noise of std ``noise``/dim)."""
        rng = np.random.default_rng(seed)
        base = self.encode_texts(texts)
        X = base + rng.normal(scale=noise / np.sqrt(self.dim), size=base.shape)
        return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
