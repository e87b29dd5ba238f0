"""What every zsvl classifier shares: predictions derived from one ``decision_function``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from zsvl.errors import InvalidParameterError, NotFittedError

__all__ = ["ScoreClassifier", "softmax", "top_k"]


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    return z / z.sum(axis=1, keepdims=True)


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and scores of the ``k`` best classes per row, best first; shapes (n, k)."""
    if not isinstance(k, int) or k < 1:
        raise InvalidParameterError(f"k must be an int >= 1. Got {k!r}.")
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    idx = np.take_along_axis(part, order, axis=1)
    return idx, np.take_along_axis(scores, idx, axis=1)


class ScoreClassifier(ABC):
    """Mixin: ``predict``, ``predict_proba`` and ``top_k`` from ``decision_function``.

    Subclasses set ``classes_`` (a ClassSet) and ``logit_scale_`` in ``fit`` and implement
    ``decision_function(X) -> (n_samples, n_classes)`` cosine-like scores.
    """

    classes_: Any
    logit_scale_: float

    def _check_fitted(self) -> None:
        if not hasattr(self, "classes_"):
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet; call fit() before using it."
            )

    @abstractmethod
    def decision_function(self, X: Any) -> np.ndarray:
        """Scores of shape (n_samples, n_classes); higher is better."""

    def predict(self, X: Any) -> np.ndarray:
        """Class names of the best class per row, shape (n_samples,)."""
        return np.asarray(self.classes_.names, dtype=object)[self.decision_function(X).argmax(1)]

    def predict_label(self, X: Any) -> np.ndarray:
        """Integer labels (positions in ``classes_``) of the best class, shape (n_samples,)."""
        return self.decision_function(X).argmax(1)

    def predict_proba(self, X: Any) -> np.ndarray:
        """softmax(logit_scale * scores) with the model's own logit scale; (n_samples, n_classes)."""
        return softmax(self.logit_scale_ * self.decision_function(X))

    def top_k(self, X: Any, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
        """Labels and probabilities of the ``k`` most probable classes, each (n_samples, k)."""
        return top_k(self.predict_proba(X), k)
