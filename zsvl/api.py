"""The one-call front door: ``load_model`` and ``classify``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from zsvl.methods.base import top_k as take_top_k
from zsvl.models.base import Encoder, ImageFailure, OnError
from zsvl.text.classes import ClassSet, as_classset

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from zsvl.models.spec import SpecLike

__all__ = ["load_model", "classify", "ClassificationResult", "DEFAULT_MODEL"]

DEFAULT_MODEL = "ViT-B-32:laion2b_s34b_b79k"


def load_model(
    spec: SpecLike = DEFAULT_MODEL,
    *,
    device: str | torch.device | None = None,
    precision: str = "fp32",
    cache: bool = True,
    cache_dir: str | None = None,
) -> Encoder:
    """Load an encoder from any model spec, with the on-disk embedding cache in front.

    ``spec`` examples: ``"ViT-B-32:laion2b_s34b_b79k"``, ``("ViT-B-32", "openai")``,
    ``"ViT-B-32:/path/weights.bin"``, ``"local-dir:/path"``, ``"hf-hub:org/repo"``, ``"toy"``.
    ``device`` None picks CUDA when present; ``precision`` is fp32, fp16 or bf16;
    ``cache_dir`` is where Hugging Face weights are looked up and downloaded.
    """
    from zsvl.models import load_model as load_uncached

    encoder = load_uncached(spec, device=device, precision=precision, cache_dir=cache_dir)
    if not cache:
        return encoder
    from zsvl.embed.cached import CachedEncoder

    return CachedEncoder(encoder)


@dataclass(frozen=True)
class ClassificationResult:
    """Predictions for the images that could be read, in input order.

    sources : one label per successfully classified image (file path or in-memory description).
    labels : predicted class name per image.
    scores : probability of the predicted class, shape (n,).
    probs : class probabilities, shape (n, n_classes).
    topk_labels, topk_scores : the k most probable class names and probabilities, shape (n, k).
    skipped : inputs that could not be read (with ``on_error="skip"``).
    """

    classes: ClassSet
    sources: list[str]
    labels: list[str]
    scores: np.ndarray
    probs: np.ndarray
    topk_labels: list[list[str]]
    topk_scores: np.ndarray
    skipped: list[ImageFailure] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)

    def to_records(self) -> list[dict[str, Any]]:
        """One JSON-ready dict per image."""
        return [
            {
                "source": src,
                "label": label,
                "score": float(score),
                "top_k": [
                    {"label": lab, "score": float(s)} for lab, s in zip(top, top_s, strict=True)
                ],
            }
            for src, label, score, top, top_s in zip(
                self.sources,
                self.labels,
                self.scores,
                self.topk_labels,
                self.topk_scores,
                strict=True,
            )
        ]


def classify(
    images: Any,
    classes: ClassSet | Sequence[str],
    *,
    model: SpecLike | Encoder = DEFAULT_MODEL,
    templates: str | Sequence[str] | None = None,
    top_k: int = 5,
    batch_size: int = 64,
    on_error: OnError = "raise",
    device: str | None = None,
) -> ClassificationResult:
    """Zero-shot classify ``images`` (paths, folders, PIL images, arrays, tensors) into ``classes``.

    ``model`` is a spec (loaded with the cache) or an Encoder; ``templates`` a set name, a list,
    or None for the model's default set. With ``on_error="skip"`` unreadable files are reported
    in ``result.skipped`` and the rest are classified.
    """
    from zsvl.methods.zeroshot import ZeroShotClassifier

    encoder = model if isinstance(model, Encoder) else load_model(model, device=device)
    classset = as_classset(classes)
    clf = ZeroShotClassifier(encoder, classset, templates=templates).fit()
    encoded = encoder.encode_images(images, batch_size=batch_size, on_error=on_error)
    probs = clf.predict_proba(encoded.embeddings)
    names = np.asarray(classset.names, dtype=object)
    best = probs.argmax(axis=1)
    idx, top_scores = take_top_k(probs, top_k) if len(probs) else (np.zeros((0, 0), int), probs)
    return ClassificationResult(
        classes=classset,
        sources=[encoded.sources[i] for i in encoded.indices],
        labels=[str(n) for n in names[best]],
        scores=probs[np.arange(len(best)), best],
        probs=probs,
        topk_labels=[[str(n) for n in row] for row in names[idx]],
        topk_scores=top_scores,
        skipped=list(encoded.failures),
    )
