"""Zero-shot checks of a CLIP on the toy suite, with open_clip directly (no zsvl layers).

Class weights are the normalised mean over templates of normalised text embeddings; images go
through the model's val transform; a prediction is the class of highest cosine similarity.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from zsvl.toy.suite import get_toy_dataset, render_split
from zsvl.toy.world import dataset_classes

__all__ = [
    "ATTRIBUTE_TEMPLATES",
    "class_weights",
    "encode_images",
    "zero_shot_accuracy",
    "evaluate_toy_model",
]

# prompts that name one attribute only, for the attribute-only check on ToyFine
ATTRIBUTE_TEMPLATES = {
    "shape": "a photo of a {}.",
    "colour": "a photo of a {} shape.",
    "pattern": "a photo of a {} shape.",
}


def class_weights(
    model: Any, tokenizer: Callable, classnames: Sequence[str], templates: Sequence[str]
) -> Any:
    """Zero-shot classifier weights: torch tensor of shape (n_classes, dim), L2-normalised."""
    import torch

    texts = [t.format(c) for c in classnames for t in templates]
    with torch.no_grad():
        emb = model.encode_text(tokenizer(texts), normalize=True)
    emb = emb.reshape(len(classnames), len(templates), -1).mean(dim=1)
    return torch.nn.functional.normalize(emb, dim=-1)


def encode_images(
    model: Any, preprocess: Callable, images: np.ndarray, batch_size: int = 256
) -> Any:
    """Embeddings of uint8 images (n, H, W, 3) via ``preprocess``: tensor (n, dim), normalised."""
    import torch
    from PIL import Image

    out = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            batch = torch.stack([preprocess(Image.fromarray(img)) for img in chunk])
            out.append(model.encode_image(batch, normalize=True))
    return torch.cat(out)


def zero_shot_accuracy(image_features: Any, weights: Any, labels: np.ndarray) -> float:
    """Top-1 accuracy of argmax cosine similarity; features (n, dim), weights (n_classes, dim)."""
    pred = (image_features @ weights.T).argmax(dim=-1).cpu().numpy()
    return float(np.mean(pred == np.asarray(labels)))


def _attribute_accuracies(
    model: Any, tokenizer: Callable, features: Any, labels: np.ndarray
) -> dict[str, float]:
    """Accuracy of naming one attribute of ToyFine test images, and its chance level."""
    classes = dataset_classes("ToyFine")
    out: dict[str, float] = {}
    for attribute, template in ATTRIBUTE_TEMPLATES.items():
        values = sorted({c.attributes[attribute] for c in classes})
        truth = np.array([values.index(classes[y].attributes[attribute]) for y in labels])
        weights = class_weights(model, tokenizer, values, [template])
        out[f"attr_{attribute}_top1"] = zero_shot_accuracy(features, weights, truth)
        out[f"attr_{attribute}_chance"] = 1.0 / len(values)
    return out


def evaluate_toy_model(
    model: Any,
    preprocess: Callable,
    tokenizer: Callable,
    *,
    seed: int = 0,
    split: str = "test",
    per_class: int | None = None,
) -> dict[str, float]:
    """Zero-shot top-1 on every toy dataset (its own template) and attribute-only prompts.

    Returns a flat dict: ``{"ToyFine_top1": ..., "ToyShapes_top1": ..., "ToyTextures_top1": ...,
    "attr_shape_top1": ..., "attr_shape_chance": ..., ...}``; primary metric ``ToyFine_top1``.
    """
    model.eval()
    metrics: dict[str, float] = {}
    for name in ("ToyFine", "ToyShapes", "ToyTextures"):
        spec = get_toy_dataset(name)
        images, labels = render_split(spec, split, seed, per_class)
        features = encode_images(model, preprocess, images)
        weights = class_weights(model, tokenizer, spec.classnames, [spec.template])
        metrics[f"{name}_top1"] = zero_shot_accuracy(features, weights, labels)
        if name == "ToyFine":
            metrics.update(_attribute_accuracies(model, tokenizer, features, labels))
    return metrics
