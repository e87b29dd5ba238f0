"""Encoders: the Encoder protocol, model specs, the registry and the open_clip backend."""

from __future__ import annotations

from typing import TYPE_CHECKING

from zsvl.models.base import EncodedImages, Encoder, ImageFailure
from zsvl.models.registry import REGISTRY, list_models, resolve_spec
from zsvl.models.spec import ModelSpec, SpecLike, parse_spec

DEFAULT_MODEL = (
    "ViT-B-32:laion2b_s34b_b79k"  # what zsvl.load_model and zsvl.classify use by default
)

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "DEFAULT_MODEL",
    "Encoder",
    "EncodedImages",
    "ImageFailure",
    "ModelSpec",
    "REGISTRY",
    "list_models",
    "open_encoder",
    "parse_spec",
    "resolve_spec",
]


def open_encoder(
    spec: SpecLike = DEFAULT_MODEL,
    *,
    device: str | torch.device | None = None,
    precision: str = "fp32",
    cache_dir: str | None = None,
    num_workers: int | None = None,
) -> Encoder:
    """The bare open_clip encoder of any model spec, without the embedding cache.

    Users call :func:`zsvl.load_model` (``zsvl.embed.load_model``), which puts the on-disk
    embedding cache in front of this; the arguments are documented there.
    """
    from zsvl.models.openclip import OpenClipEncoder

    return OpenClipEncoder(
        resolve_spec(spec),
        device=device,
        precision=precision,
        cache_dir=cache_dir,
        num_workers=num_workers,
    )
