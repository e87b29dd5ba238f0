"""Encoders: the Encoder protocol, model specs, the registry and the open_clip backend."""

from __future__ import annotations

from typing import TYPE_CHECKING

from zsvl.models.base import EncodedImages, Encoder, ImageFailure
from zsvl.models.registry import REGISTRY, list_models, resolve_spec
from zsvl.models.spec import ModelSpec, SpecLike, parse_spec

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from zsvl.models.openclip import OpenClipEncoder

__all__ = [
    "Encoder",
    "EncodedImages",
    "ImageFailure",
    "ModelSpec",
    "REGISTRY",
    "list_models",
    "load_model",
    "parse_spec",
    "resolve_spec",
]


def load_model(
    spec: SpecLike,
    *,
    device: str | torch.device | None = None,
    precision: str = "fp32",
    cache_dir: str | None = None,
    num_workers: int | None = None,
) -> OpenClipEncoder:
    """Build an uncached :class:`OpenClipEncoder` from any model spec (see ``zsvl.models.spec``).

    ``zsvl.load_model`` is the same with the embedding cache in front; use this one for speed work.
    """
    from zsvl.models.openclip import OpenClipEncoder

    return OpenClipEncoder(
        resolve_spec(spec),
        device=device,
        precision=precision,
        cache_dir=cache_dir,
        num_workers=num_workers,
    )
