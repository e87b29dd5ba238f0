"""Zero-shot classification from class names and prompt templates (CLIP's prompt ensembling)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from zsvl.arrays import as_embeddings, l2_normalize
from zsvl.classes import ClassSet, as_classset
from zsvl.errors import InvalidParameterError
from zsvl.methods.base import ScoreClassifier
from zsvl.models.base import Encoder
from zsvl.text.templates import format_prompts, load_templates

__all__ = ["ZeroShotClassifier", "class_text_weights"]


def class_text_weights(
    encoder: Encoder, classes: ClassSet, templates: Sequence[str], *, batch_size: int = 256
) -> np.ndarray:
    """Class weights (n_classes, dim): the normalised mean of each class's template embeddings."""
    prompts = format_prompts(templates, classes.names)
    emb = encoder.encode_texts(prompts, batch_size=batch_size)
    emb = emb.reshape(len(classes), len(templates), -1).mean(axis=1)
    return l2_normalize(emb)


class ZeroShotClassifier(ScoreClassifier):
    """CLIP zero-shot classifier: scores are cosines between images and class text weights.

    Parameters
    ----------
    encoder : Encoder
        Encodes the prompts; image embeddings passed to ``decision_function`` must come from it.
    classes : ClassSet or sequence of str
        Class names in label order.
    templates : str, list of str or None
        A template set name (``"single"``, ``"imagenet80"``, ``"imagenet7"``, ``"coop:dtd"``),
        a JSON file, or explicit templates with ``{}`` / ``{c}``. None: the model's default.
    batch_size : int
        Text encoding batch size.

    Attributes (after ``fit``): ``classes_`` (array of names), ``classset_`` (ClassSet), ``templates_`` (tuple of str),
    ``weights_`` (float32, (n_classes, dim)), ``logit_scale_`` (float).
    """

    def __init__(
        self,
        encoder: Encoder,
        classes: ClassSet | Sequence[str] | None = None,
        *,
        templates: str | Sequence[str] | None = None,
        batch_size: int = 256,
    ) -> None:
        self.encoder = encoder
        self.classes = classes
        self.templates = templates
        self.batch_size = batch_size

    def fit(self, X: Any = None, y: Any = None) -> ZeroShotClassifier:
        """Build the class weights. ``X`` and ``y`` are ignored: zero-shot needs no labels."""
        if self.classes is None:
            raise InvalidParameterError("ZeroShotClassifier needs classes=[...] to fit.")
        classes = as_classset(self.classes)
        default: str | Sequence[str] = getattr(self.encoder, "default_templates", "single")
        self.templates_ = load_templates(self.templates if self.templates else default)
        self.weights_ = class_text_weights(
            self.encoder, classes, self.templates_, batch_size=self.batch_size
        )
        self.classes_ = classes
        self.logit_scale_ = float(self.encoder.logit_scale)
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """Cosine similarities of shape (n_samples, n_classes) for image embeddings X (n, dim)."""
        self._check_fitted()
        X = as_embeddings(X, dim=self.weights_.shape[1])
        import torch

        device = getattr(self.encoder, "device", "cpu")
        with torch.inference_mode():
            W = torch.as_tensor(self.weights_, device=device)
            return (torch.as_tensor(X, device=device) @ W.T).cpu().numpy()
