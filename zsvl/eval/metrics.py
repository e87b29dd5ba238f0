"""Classification metrics on score matrices. Each returns a float in [0, 100]."""

from __future__ import annotations

import numpy as np

__all__ = ["topk_accuracy", "mean_per_class_accuracy"]


def topk_accuracy(scores: np.ndarray, labels: np.ndarray, k: int = 1) -> float:
    """Percent of rows whose true label is among the ``k`` highest scores; scores (n, C)."""
    labels = np.asarray(labels)
    if len(labels) == 0:
        return float("nan")
    k = min(k, scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    return float(100.0 * (top == labels[:, None]).any(axis=1).mean())


def mean_per_class_accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy averaged over the classes present in ``labels``."""
    labels = np.asarray(labels)
    if len(labels) == 0:
        return float("nan")
    correct = scores.argmax(axis=1) == labels
    per_class = [correct[labels == c].mean() for c in np.unique(labels)]
    return float(100.0 * np.mean(per_class))
