"""Explanations: which descriptors made a class win, and by how much (CBD's interpretability).

For the mean aggregations a class score is a sum over its texts, s_c = sum_j w_j (x . t_j), so
each text's *contribution* ``w_j * similarity`` adds up exactly to the score:
w_j = 1/M_c for ``mean_sims`` and 1/(M_c * ||mean_j t_j||) for ``mean_emb``. For ``max`` the best
text contributes its similarity and the others nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["Evidence", "Explanation", "explain_segments", "explain_images"]


@dataclass(frozen=True)
class Evidence:
    """One text of the explained class."""

    descriptor: str  # the descriptor as stored
    text: str  # the sentence CLIP saw
    similarity: float  # cosine between the image and the text
    contribution: float  # its share of the class score (sums to the score for mean aggregations)


@dataclass(frozen=True)
class Explanation:
    """Why image ``index`` got class ``label``: its texts, most contributing first."""

    index: int  # row of the explained image
    label: int  # explained class (the prediction unless asked otherwise)
    classname: str
    score: float  # decision_function value of that class
    evidence: tuple[Evidence, ...]  # top texts, largest contribution first

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        items = "; ".join(f"{e.descriptor} ({e.similarity:.3f})" for e in self.evidence)
        return f"{self.classname} {self.score:.3f}: {items}"


def explain_segments(
    X: np.ndarray, labels: np.ndarray, scores: np.ndarray, text_emb: np.ndarray,
    owners: np.ndarray, texts: Sequence[str], descriptors: Sequence[str],
    classnames: Sequence[str], *, aggregation: str, top: int = 5,
) -> list[Explanation]:
    """Explanations for rows of X (n, D) and their classes ``labels`` (n,).

    text_emb (T, D), owners (T,) give each text's class; ``scores`` (n,) is each row's score for
    its label. One matrix product per distinct class explained.
    """
    order = np.argsort(owners, kind="stable")
    bounds = np.searchsorted(owners[order], np.arange(len(classnames) + 1))
    out: list[Explanation | None] = [None] * len(X)
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        idx = order[bounds[c] : bounds[c + 1]]
        sims = X[rows] @ text_emb[idx].T  # (rows, M_c)
        if aggregation == "max":
            contrib = np.where(sims == sims.max(axis=1, keepdims=True), sims, 0.0)
        elif aggregation == "mean_emb":
            norm = float(np.linalg.norm(text_emb[idx].mean(axis=0))) if len(idx) else 1.0
            contrib = sims / (len(idx) * max(norm, 1e-12))
        else:
            contrib = sims / max(len(idx), 1)
        key = sims if aggregation == "max" else contrib  # max: the winner first, then by cosine
        best = np.argsort(-key, axis=1, kind="stable")[:, :top]
        for r, row in enumerate(rows):
            out[row] = Explanation(
                int(row), int(c), classnames[c], float(scores[row]),
                tuple(
                    Evidence(descriptors[idx[j]], texts[idx[j]], float(sims[r, j]),
                             float(contrib[r, j]))
                    for j in best[r]
                ),
            )
    return [e for e in out if e is not None]


def explain_images(
    images: Any, descriptors: Any, *, model: Any = None, aggregation: str = "mean_sims",
    top: int = 5, classes: Any = None, batch_size: int = 64, on_error: str = "skip",
    device: str | None = None,
) -> dict[str, Any]:
    """Classify images with descriptors and explain each prediction (``zsvl classify --explain``).

    Returns {"results": [{"source", "label", "score", "explanation": [...]}, ...], "skipped":
    [{"source", "error"}]}.
    """
    from zsvl.embed.loading import DEFAULT_MODEL, load_model
    from zsvl.methods.descriptors import DescriptorClassifier
    from zsvl.models.base import Encoder

    encoder = model if isinstance(model, Encoder) else load_model(model or DEFAULT_MODEL,
                                                                  device=device)
    clf = DescriptorClassifier(encoder, descriptors, classes, aggregation=aggregation).fit()
    encoded = encoder.encode_images(images, batch_size=batch_size, on_error=on_error)
    explanations = clf.explain(encoded.embeddings, top=top) if len(encoded) else []
    proba = clf.predict_proba(encoded.embeddings) if len(encoded) else np.zeros((0, 1))
    results = [
        {
            "source": encoded.sources[i],
            "label": e.classname,
            "probability": float(proba[k, e.label]),
            "score": e.score,
            "explanation": [asdict(ev) for ev in e.evidence],
        }
        for k, (i, e) in enumerate(zip(encoded.indices, explanations, strict=True))
    ]
    skipped = [{"source": f.source, "error": f.error} for f in encoded.failures]
    return {"results": results, "skipped": skipped}
