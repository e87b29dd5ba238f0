"""Vocabulary-free classification: CaSED (Conti et al., NeurIPS 2023) over a zsvl caption index.

For each image: retrieve the ``k`` nearest captions (image-to-text, inner product), drop near-
duplicates (cosine >= ``dedupe``), extract candidate names from those captions, and score every
candidate c with

    p(c) = alpha * softmax(s * cos(image, c)) + (1 - alpha) * softmax(s * cos(centroid, c))

over the image's own candidates, where ``centroid`` is the normalised mean of the retrieved
captions' stored embeddings and ``s`` the model's logit scale. Candidate text embeddings are cached
across images and calls (each distinct name is encoded once); caption embeddings come from the
index's float16 shards and are never re-encoded. The whole batch is scored with padded tensors.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from zsvl.arrays import as_embeddings, l2_normalize
from zsvl.classes import ClassSet
from zsvl.errors import IndexMismatchError, InvalidParameterError, NotFittedError
from zsvl.methods.adapter_base import check_number
from zsvl.methods.base import ScoreClassifier
from zsvl.models.base import Encoder
from zsvl.text.candidates import CandidateExtractor
from zsvl.text.templates import format_prompts, load_templates

__all__ = ["VocabularyFreeClassifier", "VocabularyFreeResult", "CandidateCache"]

logger = logging.getLogger(__name__)


class CandidateCache:
    """Text embeddings of candidate names, encoded once each (template-averaged, normalised)."""

    def __init__(self, encoder: Encoder, templates: Sequence[str], batch_size: int = 256) -> None:
        self.encoder = encoder
        self.templates = tuple(templates)
        self.batch_size = batch_size
        self.rows: dict[str, int] = {}
        self._blocks: list[np.ndarray] = []
        self._matrix: np.ndarray | None = None
        self.encoded = 0  # names encoded so far (a cache miss count)

    def lookup(self, names: Sequence[str]) -> np.ndarray:
        """Row numbers (len(names),) of ``names`` in :attr:`matrix`, encoding unseen ones."""
        new = list(dict.fromkeys(n for n in names if n not in self.rows))
        if new:
            prompts = format_prompts(self.templates, new)
            emb = self.encoder.encode_texts(prompts, batch_size=self.batch_size)
            emb = l2_normalize(emb.reshape(len(new), len(self.templates), -1).mean(1))
            for name in new:
                self.rows[name] = len(self.rows)
            self._blocks.append(emb)
            self._matrix = None
            self.encoded += len(new)
        return np.array([self.rows[n] for n in names], dtype=np.int64)

    @property
    def matrix(self) -> np.ndarray:
        """All cached embeddings, (n_names, dim)."""
        if self._matrix is None:
            dim = self.encoder.embed_dim
            self._matrix = (
                np.concatenate(self._blocks) if self._blocks else np.zeros((0, dim), np.float32)
            )
        return self._matrix


@dataclass(frozen=True)
class VocabularyFreeResult:
    """Per image: the predicted name, its probability, and every candidate with its probability.

    labels : list of str (n,), "" where no candidate was found.
    scores : float32 (n,) probability of the prediction.
    candidates : list of n lists of (name, probability), best first.
    captions : list of n lists of the retrieved (deduplicated) captions.
    """

    labels: list[str]
    scores: np.ndarray
    candidates: list[list[tuple[str, float]]]
    captions: list[list[str]]


class VocabularyFreeClassifier(ScoreClassifier):
    """CaSED: classify images without a class list, from captions retrieved from an index.

    Parameters
    ----------
    encoder : Encoder whose image embeddings are classified (must match the index).
    index : a :class:`zsvl.index.CaptionIndex` built with the same encoder.
    k : captions retrieved per image (10).
    alpha : weight of the image-to-candidate term (0.7; 0.5 in CaSED's first release).
    dedupe : cosine at which retrieved captions count as near-duplicates (0.94); None keeps all.
    extractor : :class:`CandidateExtractor` (min_count 2, stop list, POS filter, phrases).
    templates : prompt templates for candidate names ("{}" by default: the name alone).

    ``fit(X)`` discovers the vocabulary ``classes_`` (union of the candidates of X's images); then
    ``decision_function(X)`` is (n, n_vocabulary) with each row the image's CaSED probabilities
    (zero outside its own candidates) and ``predict`` its argmax. ``predict_words(X)`` needs no
    vocabulary at all (``fit()`` without X is enough).
    """

    def __init__(
        self,
        encoder: Encoder,
        index: Any,
        *,
        k: int = 10,
        alpha: float = 0.7,
        dedupe: float | None = 0.94,
        extractor: CandidateExtractor | None = None,
        templates: str | Sequence[str] = "{}",
        batch_size: int = 256,
    ) -> None:
        self.encoder = encoder
        self.index = index
        self.k = k
        self.alpha = alpha
        self.dedupe = dedupe
        self.extractor = extractor
        self.templates = templates
        self.batch_size = batch_size

    def _validate(self) -> None:
        name = type(self).__name__
        check_number(self.alpha, "alpha", name, low=0.0, high=1.0, low_inclusive=True)
        check_number(self.k, "k", name, low=1, low_inclusive=True, integer=True)
        if (
            self.index.dim != self.encoder.embed_dim
            or self.index.manifest["encoder"]["fingerprint"] != self.encoder.fingerprint
        ):
            raise IndexMismatchError(
                f"The caption index was built with {self.index.manifest['encoder']['fingerprint']} "
                f"(dim {self.index.dim}) but the encoder is {self.encoder.fingerprint} (dim "
                f"{self.encoder.embed_dim}); build the index with this encoder."
            )

    def fit(self, X: Any = None, y: Any = None) -> VocabularyFreeClassifier:
        """Prepare the candidate cache; with image embeddings X (n, dim), also set ``classes_`` to
        the vocabulary found for them (most frequent predictions first). ``y`` is ignored.

        ``predict_words`` works after ``fit()``; ``decision_function``, ``predict`` and
        ``predict_proba`` need the vocabulary of ``fit(X)``.
        """
        self._validate()
        self.cache_ = CandidateCache(self.encoder, load_templates(self.templates), self.batch_size)
        self.extractor_ = self.extractor or CandidateExtractor()
        self.logit_scale_ = float(self.encoder.logit_scale)
        self.__dict__.pop("classset_", None)
        if X is not None:
            result = self.predict_words(X)
            counts: dict[str, int] = {}
            for label in result.labels:
                counts[label] = counts.get(label, 0) + 1
            seen = dict.fromkeys(name for cands in result.candidates for name, _ in cands)
            names = sorted(seen, key=lambda n: -counts.get(n, 0))
            if not names:
                raise InvalidParameterError("No candidate names were found for any image.")
            self.classes_ = ClassSet(tuple(names))
        return self

    def _check_fitted(self) -> None:
        if "cache_" not in self.__dict__:
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet; call fit() before using it."
            )
        if "classset_" not in self.__dict__:
            raise NotFittedError(
                f"This {type(self).__name__} has no vocabulary: call fit(X) with image "
                "embeddings to discover one (predict_words(X) needs none)."
            )

    # -- core ------------------------------------------------------------------------------
    def retrieve(self, X: np.ndarray) -> tuple[list[list[str]], np.ndarray]:
        """Retrieved captions per image and their stored embeddings' centroid (n, dim)."""
        res = self.index.search(X, self.k, dedupe=self.dedupe)
        emb = self.index.embeddings(res.ids)  # (n, k, dim), zeros for -1
        centroid = l2_normalize(emb.sum(1))
        return res.captions, centroid

    def candidate_probs(self, X: Any) -> tuple[list[list[str]], np.ndarray, list[list[str]]]:
        """Candidates per image, their fused probabilities (n, max_candidates) (0 where padded),
        and the retrieved captions."""
        if "cache_" not in self.__dict__:
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet; call fit() before using it."
            )
        X = np.ascontiguousarray(as_embeddings(X, dim=self.encoder.embed_dim))
        captions, centroid = self.retrieve(X)
        cands = self.extractor_.batch(captions)
        width = max([len(c) for c in cands] + [1])
        rows = np.zeros((len(X), width), dtype=np.int64)
        mask = np.zeros((len(X), width), dtype=bool)
        all_rows = self.cache_.lookup([n for c in cands for n in c])
        start = 0
        for i, c in enumerate(cands):
            rows[i, : len(c)] = all_rows[start : start + len(c)]
            mask[i, : len(c)] = True
            start += len(c)
        matrix = self.cache_.matrix
        if len(matrix) == 0:  # no image has a candidate
            matrix = np.zeros((1, X.shape[1]), np.float32)
        probs = self._fuse(X, centroid, matrix[rows], mask)
        return cands, probs, captions

    def _fuse(
        self, X: np.ndarray, centroid: np.ndarray, C: np.ndarray, mask: np.ndarray
    ) -> np.ndarray:
        """alpha softmax(s x.c) + (1 - alpha) softmax(s m.c) over each row's valid candidates."""
        import torch

        device = getattr(self.encoder, "device", "cpu")
        with torch.inference_mode():
            Ct = torch.as_tensor(C, device=device)  # (n, w, dim)
            m = torch.as_tensor(mask, device=device)
            out = torch.zeros(m.shape, device=device)
            for weight, q in ((self.alpha, X), (1.0 - self.alpha, centroid)):
                if weight == 0:
                    continue
                logits = self.logit_scale_ * torch.einsum(
                    "nd,nwd->nw", torch.as_tensor(q, device=device), Ct
                )
                logits = logits.masked_fill(~m, float("-inf"))
                p = torch.softmax(logits, dim=1).nan_to_num(0.0)
                out += weight * p
            return out.cpu().numpy().astype(np.float32)

    # -- outputs ---------------------------------------------------------------------------
    def predict_words(self, X: Any) -> VocabularyFreeResult:
        """CaSED predictions per image without a vocabulary: see :class:`VocabularyFreeResult`."""
        cands, probs, captions = self.candidate_probs(X)
        labels, scores, ranked = [], np.zeros(len(cands), np.float32), []
        for i, c in enumerate(cands):
            order = np.argsort(-probs[i, : len(c)], kind="stable")
            ranked.append([(c[j], float(probs[i, j])) for j in order])
            labels.append(c[order[0]] if len(c) else "")
            scores[i] = probs[i, order[0]] if len(c) else 0.0
        return VocabularyFreeResult(
            labels=labels, scores=scores, candidates=ranked, captions=captions
        )

    def decision_function(self, X: Any) -> np.ndarray:
        """(n, len(classes_)) CaSED probabilities over the vocabulary found by ``fit(X)``; a
        candidate outside the vocabulary is dropped (its row then sums to less than 1)."""
        self._check_fitted()
        cands, probs, _ = self.candidate_probs(X)
        position = {name: j for j, name in enumerate(self.classset_.names)}
        rows = np.repeat(np.arange(len(cands)), [len(c) for c in cands])
        slots = np.concatenate([np.arange(len(c)) for c in cands] + [np.zeros(0, np.int64)])
        cols = np.array([position.get(name, -1) for c in cands for name in c], dtype=np.int64)
        keep = cols >= 0
        out = np.zeros((len(cands), len(self.classset_)), dtype=np.float32)
        out[rows[keep], cols[keep]] = probs[rows[keep], slots[keep].astype(np.int64)]
        return out

    def predict_proba(self, X: Any) -> np.ndarray:
        """The CaSED probabilities renormalised over the vocabulary (rows sum to 1); an image
        without any candidate in the vocabulary gets the uniform distribution."""
        scores = self.decision_function(X)
        total = scores.sum(axis=1, keepdims=True)
        uniform = np.full_like(scores, 1.0 / max(scores.shape[1], 1))
        return np.where(total > 0, scores / np.where(total > 0, total, 1.0), uniform)
