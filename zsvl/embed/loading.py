"""``load_model``: the one way to get an encoder, with the embedding cache in front by default."""

from __future__ import annotations

from typing import TYPE_CHECKING

from zsvl.models import DEFAULT_MODEL, Encoder, open_encoder

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from zsvl.models.spec import SpecLike

__all__ = ["load_model", "DEFAULT_MODEL"]


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
    ``cache=False`` returns the bare :class:`~zsvl.models.openclip.OpenClipEncoder` (speed work,
    index builds, which resume from their own shards); ``cache_dir`` is where Hugging Face
    weights are looked up and downloaded; ``num_workers`` decodes images in that many worker
    processes (None: automatic).
    """
    encoder = open_encoder(
        spec, device=device, precision=precision, cache_dir=cache_dir, num_workers=num_workers
    )
    if not cache:
        return encoder
    from zsvl.embed.cached import CachedEncoder

    return CachedEncoder(encoder)
