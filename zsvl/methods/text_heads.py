"""Text heads: class scores from per-class text embeddings, and each text's share of a score.

The scoring kernels shared by the descriptor classifiers (CBD, CuPL, WaffleCLIP, FuDD). Every class
c has texts t_c1..t_cM; with image embeddings X (N, D), text embeddings E (T, D) and each text's
class ``owners`` (T,):

- ``aggregate_texts``: class weights W (C, D), the per-class mean of the texts (``mean_sims``,
  CBD/WaffleCLIP: s_c = x . mean_j t_cj, not renormalised) or that mean L2-normalised
  (``mean_emb``, CuPL / prompt ensembles);
- ``matmul_scores``: X @ W.T, one matrix product in torch on the encoder's device;
- ``segment_max_scores``: s_c = max_j x . t_cj, one (N, T) product and a segment max
  (``scatter_reduce``) per row chunk;
- ``explain_segments``: for the mean aggregations a class score is a sum over its texts,
  s_c = sum_j w_j (x . t_j), so each text's *contribution* ``w_j * similarity`` adds up exactly to
  the score: w_j = 1/M_c for ``mean_sims`` and 1/(M_c * ||mean_j t_j||) for ``mean_emb``. For
  ``max`` the best text contributes its similarity and the others nothing (CBD's
  interpretability).

No Python loop runs over classes or images in the scoring kernels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = [
    "Evidence",
    "Explanation",
    "aggregate_texts",
    "explain_segments",
    "matmul_scores",
    "segment_max_scores",
]

_CHUNK = 8192  # image rows per block in the max aggregation


def aggregate_texts(
    text_emb: np.ndarray, owners: np.ndarray, n_classes: int, aggregation: str
) -> np.ndarray:
    """Class weights (n_classes, D) from text embeddings (T, D) and their labels (T,).

    ``mean_sims``: per-class mean; ``mean_emb``: the mean, L2-normalised. Every class needs a
    text.
    """
    import torch

    E = torch.as_tensor(np.ascontiguousarray(text_emb, dtype=np.float32))
    own = torch.as_tensor(np.asarray(owners, dtype=np.int64))
    counts = torch.bincount(own, minlength=n_classes).clamp_min(1).to(E.dtype)
    W = torch.zeros(n_classes, E.shape[1], dtype=E.dtype).index_add_(0, own, E)
    W /= counts[:, None]
    if aggregation == "mean_emb":
        W = torch.nn.functional.normalize(W, dim=1)
    out: np.ndarray = W.numpy()
    return out


def matmul_scores(X: np.ndarray, W: np.ndarray, device: Any = "cpu") -> np.ndarray:
    """X (N, D) @ W (C, D).T in torch on ``device``; returns numpy (N, C)."""
    import torch

    with torch.inference_mode():
        out = torch.as_tensor(X, device=device) @ torch.as_tensor(W, device=device).T
        scores: np.ndarray = out.cpu().numpy()
        return scores


def segment_max_scores(
    X: np.ndarray,
    text_emb: np.ndarray,
    owners: np.ndarray,
    n_classes: int,
    *,
    device: Any = "cpu",
    chunk: int = _CHUNK,
) -> np.ndarray:
    """(N, n_classes): for each class the best cosine over its texts. Row chunks bound memory."""
    import torch

    out = np.empty((len(X), n_classes), dtype=np.float32)
    with torch.inference_mode():
        E = torch.as_tensor(text_emb, device=device)
        own = torch.as_tensor(np.asarray(owners, dtype=np.int64), device=device)
        for start in range(0, len(X), chunk):
            S = torch.as_tensor(X[start : start + chunk], device=device) @ E.T
            best = torch.full((S.shape[0], n_classes), -torch.inf, device=device)
            best.scatter_reduce_(1, own.expand(S.shape[0], -1), S, reduce="amax")
            out[start : start + len(S)] = best.cpu().numpy()
    return out


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
    X: np.ndarray,
    labels: np.ndarray,
    scores: np.ndarray,
    text_emb: np.ndarray,
    owners: np.ndarray,
    texts: Sequence[str],
    descriptors: Sequence[str],
    classnames: Sequence[str],
    *,
    aggregation: str,
    top: int = 5,
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
                int(row),
                int(c),
                classnames[c],
                float(scores[row]),
                tuple(
                    Evidence(
                        descriptors[idx[j]], texts[idx[j]], float(sims[r, j]), float(contrib[r, j])
                    )
                    for j in best[r]
                ),
            )
    return [e for e in out if e is not None]
