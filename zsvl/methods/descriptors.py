"""Classification by description: CBD (mean of similarities), CuPL (similarity of the mean), max.

Every class c has texts t_c1..t_cM (descriptor sentences). With X (N, D) image embeddings:

- ``mean_sims`` (CBD, WaffleCLIP): s_c = x . mean_j t_cj, the mean *not* renormalised;
- ``mean_emb`` (CuPL, prompt ensembles): s_c = x . normalize(mean_j t_cj);
- ``max``: s_c = max_j x . t_cj.

The two means are one C x D matrix built once in ``fit`` and one matrix product per batch; ``max``
is one (N, T) product and a segment max (``scatter_reduce``), in row chunks. No Python loop runs
over classes or images. The kernels live in :mod:`zsvl.methods.text_heads` (shared with WaffleCLIP
and FuDD) and are re-exported here.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from zsvl.arrays import as_embeddings
from zsvl.classes import ClassSet
from zsvl.errors import InvalidParameterError
from zsvl.methods.base import ScoreClassifier
from zsvl.methods.text_heads import (
    Explanation,
    aggregate_texts,
    explain_segments,
    matmul_scores,
    segment_max_scores,
)
from zsvl.models.base import Encoder
from zsvl.text.descriptors import DescriptorSet, load_descriptors
from zsvl.text.sentences import CBD_REFERENCE_TEMPLATE, CBD_TEMPLATE, build_sentences

__all__ = [
    "AGGREGATIONS",
    "DescriptorClassifier",
    "aggregate_texts",
    "segment_max_scores",
    "matmul_scores",
]

logger = logging.getLogger(__name__)

AGGREGATIONS = ("mean_sims", "mean_emb", "max")
FALLBACK_TEMPLATE = "a photo of a {c}."  # text of a class whose descriptor list is empty


class DescriptorClassifier(ScoreClassifier):
    """Scores classes by their descriptor sentences (CBD / CuPL / max).

    Parameters
    ----------
    encoder : Encoder that embeds the sentences (and the images passed later).
    descriptors : DescriptorSet, a zsvl descriptor file, or the name of a packaged one.
    classes : optional ClassSet or names; the descriptors are re-ordered to it by name.
    aggregation : "mean_sims" (CBD), "mean_emb" (CuPL) or "max".
    template : sentence template with ``{c}``, ``{d}``, ``{which}``, ``{concept}``; None picks
        "{d}" for CuPL sentences and CBD's "{c}, {which} {d}." otherwise. "{d}" alone drops the
        class name prefix.
    concept : a short concept prefix ("bird" -> "A photo of a bird: ..."), as in WaffleCLIP.
    sentence_style : "default" (zsvl's cleaned sentences) or "reference" (CBD's exact strings:
        template "{c}, {which} {d}" unless given, "{c}, {which} {d}." for ImageNet; a class
        without descriptors gets "{c}, which has "); see :mod:`zsvl.text.sentences`.
    batch_size : text encoding batch size.

    Attributes after ``fit``: ``classes_``, ``descriptors_`` (aligned DescriptorSet), ``texts_``
    (list of T sentences), ``text_owner_`` (T,), ``text_embeddings_`` (T, D), ``weights_``
    ((C, D), None for "max"), ``fallback_classes_`` (classes without descriptors, scored by
    "a photo of a {c}."), ``logit_scale_``.
    """

    def __init__(
        self,
        encoder: Encoder,
        descriptors: DescriptorSet | str | Any,
        classes: ClassSet | Sequence[str] | None = None,
        *,
        aggregation: str = "mean_sims",
        template: str | None = None,
        concept: str | None = None,
        batch_size: int = 256,
        sentence_style: str = "default",
    ) -> None:
        self.encoder = encoder
        self.descriptors = descriptors
        self.classes = classes
        self.aggregation = aggregation
        self.template = template
        self.concept = concept
        self.batch_size = batch_size
        self.sentence_style = sentence_style

    def _template(self, ds: DescriptorSet) -> str:
        if self.template is not None:
            return self.template
        if self.sentence_style == "reference":
            return CBD_REFERENCE_TEMPLATE
        return "{d}" if ds.provenance.get("style") == "cupl" else CBD_TEMPLATE

    def fit(self, X: Any = None, y: Any = None) -> DescriptorClassifier:
        """Encode every descriptor sentence once and build the class weights. X, y are ignored."""
        if self.aggregation not in AGGREGATIONS:
            raise InvalidParameterError(
                f"aggregation must be one of {AGGREGATIONS}. Got {self.aggregation!r}."
            )
        ds = load_descriptors(self.descriptors)
        if self.classes is not None:
            ds = ds.align(self.classes)
        names = ds.classes.names
        lists: list[tuple[str, ...]] = list(ds.descriptors)
        if self.sentence_style == "reference":  # the reference's text for an empty class
            lists = [items or ("",) for items in lists]
        template = self._template(ds)
        texts, owners = build_sentences(
            names, lists, template=template, concept=self.concept, style=self.sentence_style
        )
        self.fallback_classes_ = ds.empty_classes if self.sentence_style != "reference" else []
        if self.fallback_classes_:
            logger.warning(
                "%d classes have no descriptors and are scored by '%s' instead: %s",
                len(self.fallback_classes_),
                FALLBACK_TEMPLATE,
                self.fallback_classes_[:10],
            )
            for label, items in enumerate(lists):
                if not items:
                    texts.append(FALLBACK_TEMPLATE.replace("{c}", names[label].replace("_", " ")))
                    owners.append(label)
        self.texts_ = texts
        self.text_descriptors_ = [d for items in lists for d in items] + [
            "(class name)" for items in lists if not items
        ]
        self.text_owner_ = np.asarray(owners, dtype=np.int64)
        self.text_embeddings_ = self.encoder.encode_texts(texts, batch_size=self.batch_size)
        self.weights_ = (
            None
            if self.aggregation == "max"
            else aggregate_texts(
                self.text_embeddings_, self.text_owner_, len(names), self.aggregation
            )
        )
        self.template_ = template
        self.descriptors_ = ds
        self.classes_ = ds.classes
        self.logit_scale_ = float(self.encoder.logit_scale)
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """Scores (n_samples, n_classes) for image embeddings X (n_samples, dim)."""
        self._check_fitted()
        X = as_embeddings(X, dim=self.text_embeddings_.shape[1])
        device = getattr(self.encoder, "device", "cpu")
        if self.weights_ is None:
            return segment_max_scores(
                X, self.text_embeddings_, self.text_owner_, len(self.classes_), device=device
            )
        return matmul_scores(X, self.weights_, device)

    def explain(self, X: Any, *, top: int = 5, labels: Any = None) -> list[Explanation]:
        """For each image, the descriptors that contributed most to its predicted class.

        labels : optional (n,) class indices to explain instead of the predictions.
        """
        self._check_fitted()
        X = as_embeddings(X, dim=self.text_embeddings_.shape[1])
        scores = self.decision_function(X)
        labels = scores.argmax(1) if labels is None else np.asarray(labels, dtype=np.int64)
        if labels.shape != (len(X),):
            raise InvalidParameterError(f"labels must have shape ({len(X)},). Got {labels.shape}.")
        return explain_segments(
            X,
            labels,
            scores[np.arange(len(X)), labels],
            self.text_embeddings_,
            self.text_owner_,
            self.texts_,
            self.text_descriptors_,
            self.classset_.names,
            aggregation=self.aggregation,
            top=top,
        )

    def waffle_control(self, *, seeds: Sequence[int] = (0, 1, 2), kind: str = "mixed") -> Any:
        """The WaffleCLIP control for this classifier: random descriptors matched in count and
        length to these descriptors, same concept, several seeds (unfitted)."""
        from zsvl.methods.waffle import WaffleCLIPClassifier

        return WaffleCLIPClassifier(
            self.encoder,
            self.classes if self.classes is not None else None,
            match=self.descriptors,
            kind=kind,
            seeds=tuple(seeds),
            concept=self.concept,
            batch_size=self.batch_size,
        )
