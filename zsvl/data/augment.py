"""Augmented views of few-shot images: random-resized-crop and flip passes, encoded once.

Tip-Adapter and GDA encode each shot several times under random augmentation (Tip-Adapter: 10
passes of RandomResizedCrop(scale=(0.5, 1), bicubic) + RandomHorizontalFlip). Each view here is
a pure function of (augmentation seed, image content, view index): its generator is seeded from a
BLAKE2b digest of the decoded pixels, so the same image gives the same views in every run,
whatever its file name or position, and different views differ.

Views are rendered at the encoder's input resolution as uint8 arrays and passed to
``encoder.encode_images``; through :class:`~zsvl.embed.cached.CachedEncoder` each view is keyed
by its bytes, so re-running (another K, another seed that picks the same image) reads them back
from the cache. One encoding serves both users: Tip averages the views of each image
(``ShotEmbeddings.mean_views``), GDA keeps every view as a sample (``ShotEmbeddings.views``).

A "view" made with a deterministic transform would be the same image encoded n times; such a
configuration is refused.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from zsvl.arrays import l2_normalize
from zsvl.data.decode import load_image
from zsvl.data.inputs import expand_inputs
from zsvl.errors import InvalidParameterError

__all__ = [
    "AugmentConfig",
    "ShotEmbeddings",
    "random_resized_crop_box",
    "augmented_views",
    "model_input_size",
    "encode_shots",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AugmentConfig:
    """How augmented views are drawn (defaults: Tip-Adapter's training transform)."""

    n_views: int = 10  # augmented passes per image
    scale: tuple[float, float] = (0.5, 1.0)  # range of the crop's share of the image area
    ratio: tuple[float, float] = (3 / 4, 4 / 3)  # range of the crop's aspect ratio (w / h)
    flip: float = 0.5  # probability of a horizontal flip
    seed: int = 0  # augmentation seed (independent of the few-shot sampling seed)

    def __post_init__(self) -> None:
        if not isinstance(self.n_views, int) or self.n_views < 1:
            raise InvalidParameterError(f"n_views must be an int >= 1. Got {self.n_views!r}.")
        lo, hi = self.scale
        if not 0.0 < lo <= hi <= 1.0:
            raise InvalidParameterError(f"scale must satisfy 0 < lo <= hi <= 1. Got {self.scale}.")
        if not 0.0 < self.ratio[0] <= self.ratio[1]:
            raise InvalidParameterError(f"ratio must satisfy 0 < lo <= hi. Got {self.ratio}.")
        if not 0.0 <= self.flip <= 1.0:
            raise InvalidParameterError(f"flip must be a probability in [0, 1]. Got {self.flip}.")
        if lo == hi == 1.0 and self.ratio == (1.0, 1.0) and self.flip in (0.0, 1.0):
            raise InvalidParameterError(
                "This AugmentConfig is deterministic (full-image crops, no random flip): every "
                "view would be the same image. Use random crops (scale < 1) or flip=0.5, or "
                "encode the plain images instead."
            )


@dataclass(frozen=True)
class ShotEmbeddings:
    """Embeddings of few-shot images: every augmented view, and the plain (un-augmented) image.

    views : float32 (n_images, n_views, dim), L2-normalised.
    plain : float32 (n_images, dim), the encoder's own preprocessing; None if not encoded.
    """

    views: np.ndarray
    plain: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.views)

    def mean_views(self) -> np.ndarray:
        """Normalised mean of each image's views, float32 (n_images, dim) (Tip's cache keys)."""
        return l2_normalize(self.views.mean(axis=1))

    def subset(self, index: Any) -> ShotEmbeddings:
        """The rows ``index`` (an int array or a boolean mask)."""
        plain = None if self.plain is None else self.plain[index]
        return ShotEmbeddings(self.views[index], plain)


def random_resized_crop_box(
    rng: np.random.Generator,
    width: int,
    height: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of a random crop, torchvision's RandomResizedCrop rule:
    up to 10 tries of a random area share and log-uniform aspect ratio, then a centre crop."""
    area = width * height
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(10):
        target = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(log_lo, log_hi))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return left, top, left + w, top + h
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, int(round(width / ratio[0]))
    elif in_ratio > ratio[1]:
        w, h = int(round(height * ratio[1])), height
    else:
        w, h = width, height
    left, top = (width - w) // 2, (height - h) // 2
    return left, top, left + w, top + h


def _image_digest(image: Image.Image) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{image.mode}|{image.size}".encode())
    h.update(image.tobytes())
    return h.digest()


def augmented_views(item: Any, config: AugmentConfig, size: int | None = None) -> list[np.ndarray]:
    """``config.n_views`` augmented views of one image, uint8 arrays (size, size, 3).

    item : a path, PIL image, array or tensor (anything ``load_image`` reads).
    size : output side; None keeps the image's shorter side.
    """
    image = load_image(item)
    side = int(size) if size else min(image.size)
    digest = int.from_bytes(_image_digest(image), "little")
    views = []
    for v in range(config.n_views):
        rng = np.random.default_rng((int(config.seed), digest, v))
        box = random_resized_crop_box(rng, image.width, image.height, config.scale, config.ratio)
        view = image.resize((side, side), Image.Resampling.BICUBIC, box=box)
        if rng.random() < config.flip:
            view = view.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        views.append(np.asarray(view, dtype=np.uint8))
    return views


def model_input_size(encoder: Any) -> int | None:
    """The square input side of an open_clip encoder (``model.visual.image_size``), if known."""
    visual = getattr(getattr(encoder, "model", None), "visual", None)
    size = getattr(visual, "image_size", None)
    if isinstance(size, (tuple, list)):
        size = size[0] if len(set(size)) == 1 else None
    return int(size) if isinstance(size, (int, np.integer)) else None


def encode_shots(
    encoder: Any,
    images: Any,
    *,
    config: AugmentConfig | None = None,
    size: int | None = None,
    plain: bool = True,
    batch_size: int = 64,
    images_per_call: int = 64,
) -> ShotEmbeddings:
    """Encode ``config.n_views`` augmented views of every image (and the plain image).

    encoder : an Encoder; wrap it in CachedEncoder (``zsvl.load_model``) to store every view.
    images : paths, PIL images, arrays or tensors (anything ``expand_inputs`` accepts).
    size : view side; default the encoder's input size (``model_input_size``), else the
        image's shorter side. Views of ``images_per_call`` images are encoded per call, so
        memory stays bounded whatever the number of shots.
    Returns :class:`ShotEmbeddings` with views (n, n_views, dim) and plain (n, dim).
    """
    config = config or AugmentConfig()
    items = expand_inputs(images)
    side = size or model_input_size(encoder)
    chunks = []
    for start in range(0, len(items), images_per_call):
        batch = items[start : start + images_per_call]
        views = [v for item in batch for v in augmented_views(item, config, side)]
        emb = encoder.encode_images(views, batch_size=batch_size, on_error="raise").embeddings
        chunks.append(np.asarray(emb, dtype=np.float32).reshape(len(batch), config.n_views, -1))
    dim = chunks[0].shape[2] if chunks else encoder.embed_dim
    all_views = np.concatenate(chunks) if chunks else np.zeros((0, config.n_views, dim), np.float32)
    plain_emb = None
    if plain:
        plain_emb = np.asarray(
            encoder.encode_images(items, batch_size=batch_size).embeddings, dtype=np.float32
        )
    logger.debug("encoded %d images x %d views", len(items), config.n_views)
    return ShotEmbeddings(all_views, plain_emb)
