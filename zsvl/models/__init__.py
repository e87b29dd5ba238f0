"""Encoders: the Encoder protocol, model specs, the registry and the open_clip backend."""

from __future__ import annotations

from typing import TYPE_CHECKING

from zsvl.models.base import EncodedImages, Encoder, ImageFailure
from zsvl.models.registry import REGISTRY, list_models, resolve_spec
from zsvl.models.spec import ModelSpec, SpecLike, parse_spec

DEFAULT_MODEL = "ViT-B-32:laion2b_s34b_b79k"  # what load_model and zsvl.classify use by default

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
    "load_model",
    "parse_spec",
    "resolve_spec",
]


def load_model(
    spec: SpecLike = DEFAULT_MODEL,
    *,
    device: str | torch.device | None = None,
    precision: str = "fp32",
    cache: bool = True,
    cache_dir: str | None = None,
    num_workers: int | None = None,
) -> Encoder:
    """Load an encoder from any model spec, by default with the on-disk embedding cache in front.

    ``spec`` examples: ``"ViT-B-32:laion2b_s34b_b79k"``, ``("ViT-B-32", "openai")``,
    ``"ViT-B-32:/path/weights.bin"``, ``"local-dir:/path"``, ``"hf-hub:org/repo"``, ``"toy"``.
    ``device`` None picks CUDA when present; ``precision`` is fp32, fp16 or bf16;
    ``cache=False`` returns the bare :class:`OpenClipEncoder` (speed work, index builds);
    ``cache_dir`` is where Hugging Face weights are looked up and downloaded;
    ``num_workers`` decodes images in that many worker processes (None: automatic).
    """
    from zsvl.models.openclip import OpenClipEncoder

    encoder = OpenClipEncoder(
        resolve_spec(spec),
        device=device,
        precision=precision,
        cache_dir=cache_dir,
        num_workers=num_workers,
    )
    if not cache:
        return encoder
    from zsvl.embed.cached import CachedEncoder  # the one upward import: the cache wraps models

    return CachedEncoder(encoder)
