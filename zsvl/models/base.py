"""The Encoder protocol every algorithm receives, and the result of encoding images."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from zsvl.data.failures import ImageFailure, OnError  # re-exported: part of the Encoder API

__all__ = ["Encoder", "EncodedImages", "ImageFailure", "OnError"]


@dataclass(frozen=True)
class EncodedImages:
    """Embeddings of the inputs that could be read, and a record of those that could not.

    embeddings : float32 array of shape (n_ok, dim), L2-normalised, in input order.
    indices : int64 array of shape (n_ok,), the input position of each row.
    sources : the expanded inputs, one str per input (file path or "<array 0>" style label).
    failures : inputs that were skipped (only with ``on_error="skip"``).
    """

    embeddings: np.ndarray
    indices: np.ndarray
    sources: list[str]
    failures: list[ImageFailure] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.embeddings)


@runtime_checkable
class Encoder(Protocol):
    """What zsvl needs from a CLIP-style model. Embeddings are float32, L2-normalised, (N, D)."""

    @property
    def embed_dim(self) -> int: ...

    @property
    def logit_scale(self) -> float: ...

    @property
    def fingerprint(self) -> str: ...

    def encode_texts(self, texts: Sequence[str], *, batch_size: int = 256) -> np.ndarray: ...

    def encode_images(
        self, images: Any, *, batch_size: int = 64, on_error: OnError = "raise"
    ) -> EncodedImages: ...
