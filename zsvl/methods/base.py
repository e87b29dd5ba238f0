"""What every zsvl classifier shares: a scikit-learn estimator whose predictions derive from one
``decision_function``.

Every classifier derives from :class:`ScoreClassifier`, itself a scikit-learn
``ClassifierMixin`` + ``BaseEstimator``: ``get_params``/``set_params`` and
``sklearn.base.clone`` work, ``classes_`` is an array of class names, ``score`` is the mean
accuracy. ``clone`` shares collaborators (encoders, caption indexes, LLM clients, a fitted
zero-shot head, descriptor sets: any parameter that is not plain data) by reference and copies
plain parameters, so cloning never duplicates a model; the clone is unfitted.
"""

from __future__ import annotations

import copy
import numbers
from abc import ABC, abstractmethod
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from zsvl.errors import InvalidParameterError, NotFittedError

__all__ = ["ScoreClassifier", "softmax", "top_k", "clone_sharing_collaborators"]


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


def _is_plain(value: Any) -> bool:
    """Plain data (copied by clone): numbers, strings, None, arrays and containers of those."""
    if value is None or isinstance(value, str | bytes | bool | numbers.Number | np.ndarray):
        return True
    if isinstance(value, list | tuple | frozenset | set):
        return all(_is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(_is_plain(k) and _is_plain(v) for k, v in value.items())
    return False


def clone_sharing_collaborators(estimator: Any) -> Any:
    """An unfitted copy with the same parameters: plain ones deep-copied, the rest shared."""
    params = estimator.get_params(deep=False)
    new = {k: copy.deepcopy(v) if _is_plain(v) else v for k, v in params.items()}
    return type(estimator)(**new)


class ScoreClassifier(ClassifierMixin, BaseEstimator, ABC):
    """Base of every classifier: ``predict``, ``predict_proba``, ``top_k`` and ``score`` from
    ``decision_function``.

    Subclasses assign ``classes_`` (a ClassSet or a sequence of names) and ``logit_scale_`` in
    ``fit`` and implement ``decision_function(X) -> (n_samples, n_classes)`` cosine-like scores.
    Reading ``classes_`` gives an object array of the names (n_classes,); ``classset_`` keeps
    the :class:`~zsvl.classes.ClassSet` (with aliases).
    """

    logit_scale_: float

    @property
    def classes_(self) -> np.ndarray:
        """Class names in label order, object array (n_classes,)."""
        try:
            classset = self.__dict__["classset_"]
        except KeyError:
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet; call fit() before using it."
            ) from None
        return np.asarray(classset.names, dtype=object)

    @classes_.setter
    def classes_(self, classes: Any) -> None:
        from zsvl.classes import as_classset

        if isinstance(classes, np.ndarray):
            classes = [str(c) for c in classes]
        self.classset_ = as_classset(classes)

    def __sklearn_clone__(self) -> Any:
        return clone_sharing_collaborators(self)

    def _check_fitted(self) -> None:
        if "classset_" not in self.__dict__:
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet; call fit() before using it."
            )

    @abstractmethod
    def decision_function(self, X: Any) -> np.ndarray:
        """Scores of shape (n_samples, n_classes); higher is better."""

    def predict(self, X: Any) -> np.ndarray:
        """Class names of the best class per row, object array (n_samples,)."""
        labels = self.decision_function(X).argmax(1)
        return self.classes_[labels]

    def predict_label(self, X: Any) -> np.ndarray:
        """Integer labels (positions in ``classes_``) of the best class, shape (n_samples,)."""
        return self.decision_function(X).argmax(1)

    def predict_proba(self, X: Any) -> np.ndarray:
        """softmax(logit_scale * scores) with the model's own logit scale; (n_samples, n_classes)."""
        return softmax(self.logit_scale_ * self.decision_function(X))

    def top_k(self, X: Any, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
        """Labels and probabilities of the ``k`` most probable classes, each (n_samples, k)."""
        return top_k(self.predict_proba(X), k)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Mean accuracy on (X, y); ``y`` holds class names or integer positions in classes_."""
        self._check_fitted()
        y = np.asarray(y.detach().cpu().numpy() if hasattr(y, "detach") else y)
        if y.dtype.kind in "OUS":
            position = {name: i for i, name in enumerate(self.classset_.names)}
            y = np.array([position.get(str(v), -1) for v in y], dtype=np.int64)
        pred = self.predict_label(X)
        if y.shape != pred.shape:
            raise InvalidParameterError(
                f"y must have shape ({len(pred)},), one label per row of X. Got {y.shape}."
            )
        return float(np.average(pred == y, weights=sample_weight))
