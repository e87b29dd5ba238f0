"""Caption support sets: a Tip-Adapter cache whose keys are retrieved caption embeddings.

No labelled image is needed. For each class, the caption index is searched with the class's
prompt embedding; captions that name the class (every word of the class name, singular or plural)
are kept first, then the nearest others, up to ``m`` per class. Their stored text embeddings are
cache keys K_cap (M, dim) with the class as value (L_cap, one-hot rows divided by the class's key
count so that classes with fewer captions are not penalised). For image embeddings x (n, dim):

    logits = s * x T^T + alpha * A_cap L_cap [+ gamma * KL term]
    A_cap = exp(-beta * (1 - x K_cap^T))

with s the logit scale. With labelled shots (``fit(X, y)``) the image keys join the cache with
weights (1 - delta) / count (captions: delta / count), i.e. (1 - delta) A_img L_img +
delta A_cap L_cap (CapS-Adapter's mixing, on the cache outputs).

All of it is one :class:`~zsvl.methods.tip.TipAdapter` (``tip_``) fitted on those keys with
``sample_weight`` = the value weights: the same cache code, the same Tip-X KL term (SuS-X's
signatures with the rescaling range fixed at fit, see :mod:`zsvl.methods.tip`), the same torch
math on the encoder's device, and the same vectorised grid search
(:func:`zsvl.methods.grid_search.tip_grid_counts`) when ``fit(X_val=..., y_val=...)`` is given a
validation split. alpha/beta default to values that need no labels.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from zsvl.arrays import as_embeddings
from zsvl.classes import ClassSet, as_classset
from zsvl.errors import IndexMismatchError, InvalidParameterError
from zsvl.methods.adapter_base import as_views, check_number, encode_labels
from zsvl.methods.base import ScoreClassifier
from zsvl.methods.tip import TipAdapter
from zsvl.methods.zeroshot import ZeroShotClassifier
from zsvl.models.base import Encoder
from zsvl.text.candidates import singularize, tokenize

__all__ = ["CaptionSupportAdapter", "select_support_captions", "mentions_class"]

logger = logging.getLogger(__name__)

ALPHAS = (0.0, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
BETAS = (1.0, 3.0, 5.5, 10.0, 20.0, 40.0)


def mentions_class(caption: str, class_name: str) -> bool:
    """Whether every word of ``class_name`` appears in ``caption`` (singular/plural alike)."""
    words = {singularize(w) for w in tokenize(caption)}
    return all(singularize(w) in words for w in tokenize(class_name))


def select_support_captions(
    index: Any,
    queries: np.ndarray,
    names: Sequence[str],
    m: int,
    *,
    fetch_factor: int = 4,
    selection: str = "mention_then_nearest",
) -> tuple[np.ndarray, np.ndarray]:
    """Caption ids (C, m) per class (-1 pads) and the number kept per class (C,).

    selection : "nearest" (the m nearest), "mention" (only captions naming the class), or
    "mention_then_nearest" (naming ones first, nearest others to fill up to m).
    """
    if selection not in ("nearest", "mention", "mention_then_nearest"):
        raise InvalidParameterError(
            f"selection must be 'nearest', 'mention' or 'mention_then_nearest'. Got {selection!r}."
        )
    fetch = m if selection == "nearest" else m * fetch_factor
    res = index.search(queries, fetch)
    out = np.full((len(names), m), -1, dtype=np.int64)
    for c, name in enumerate(names):
        ids = res.ids[c][res.ids[c] >= 0]
        if selection != "nearest":
            named = np.array([mentions_class(t, name) for t in res.captions[c]], dtype=bool)
            ids = (
                np.concatenate([ids[named], ids[~named]]) if selection != "mention" else ids[named]
            )
        out[c, : min(m, len(ids))] = ids[:m]
    return out, (out >= 0).sum(1)


class CaptionSupportAdapter(ScoreClassifier):
    """Zero-shot classifier plus a cache of retrieved captions (and optional image shots).

    Parameters
    ----------
    encoder, classes, templates : as for :class:`ZeroShotClassifier`.
    index : a :class:`zsvl.index.CaptionIndex` built with ``encoder``.
    m : captions per class (16-64; default 32).
    alpha, beta : cache weight and sharpness (defaults 1.0 and 5.5 when no validation split).
    gamma : weight of the Tip-X KL-signature term (0 = off).
    delta : weight of the caption cache against the image-shot cache when shots are given.
    selection : see :func:`select_support_captions`.
    kl_temperature : temperature of the class-probability signatures (0.5 as in SuS-X).

    Attributes (after ``fit``): ``classes_``, ``logit_scale_``, ``zero_shot_`` (the fitted
    ZeroShotClassifier), ``weights_`` (its (C, D) text weights), ``support_ids_`` ((C, m)
    caption ids, -1 pads), ``cap_keys_`` ((M, D)), ``tip_`` (the fitted TipAdapter holding the
    cache), ``alpha_``, ``beta_`` (used values), ``val_accuracy_`` (with a validation split).
    """

    def __init__(
        self,
        encoder: Encoder,
        classes: ClassSet | Sequence[str] | None = None,
        *,
        index: Any = None,
        templates: str | Sequence[str] | None = None,
        m: int = 32,
        alpha: float | None = None,
        beta: float | None = None,
        gamma: float = 0.0,
        delta: float = 0.5,
        selection: str = "mention_then_nearest",
        kl_temperature: float = 0.5,
        batch_size: int = 256,
    ) -> None:
        self.encoder = encoder
        self.classes = classes
        self.index = index
        self.templates = templates
        self.m = m
        self.alpha = alpha
        self.beta = beta
        self.gamma = gamma
        self.delta = delta
        self.selection = selection
        self.kl_temperature = kl_temperature
        self.batch_size = batch_size

    def _validate(self) -> None:
        name = type(self).__name__
        if self.classes is None or self.index is None:
            raise InvalidParameterError(f"{name} needs classes=[...] and index=.")
        check_number(self.m, "m", name, low=1, low_inclusive=True, integer=True)
        if self.alpha is not None:
            check_number(self.alpha, "alpha", name, low=0.0, low_inclusive=True)
        if self.beta is not None:
            check_number(self.beta, "beta", name, low=0.0)
        check_number(self.delta, "delta", name, low=0.0, high=1.0, low_inclusive=True)
        fp = self.index.manifest["encoder"]["fingerprint"]
        if self.index.dim != self.encoder.embed_dim or fp != self.encoder.fingerprint:
            raise IndexMismatchError(
                f"The caption index was built with {fp} (dim {self.index.dim}) but the encoder is "
                f"{self.encoder.fingerprint} (dim {self.encoder.embed_dim})."
            )

    def fit(
        self, X: Any = None, y: Any = None, *, X_val: Any = None, y_val: Any = None
    ) -> CaptionSupportAdapter:
        """Retrieve the caption support set and build the cache.

        X, y : optional labelled image shots, (n, dim) or (n, n_views, dim), and (n,);
        X_val, y_val : optional validation split (m, dim), (m,) used to choose alpha and beta.
        """
        self._validate()
        assert self.classes is not None  # _validate raised otherwise
        classes = as_classset(self.classes)
        self.zero_shot_ = ZeroShotClassifier(
            self.encoder, classes, templates=self.templates, batch_size=self.batch_size
        ).fit()
        self.weights_ = self.zero_shot_.weights_
        ids, counts = select_support_captions(
            self.index, self.weights_, classes.names, self.m, selection=self.selection
        )
        if (counts == 0).any():
            missing = [classes.names[c] for c in np.flatnonzero(counts == 0)]
            logger.warning(
                "No support captions for %d classes (%s); they rely on zero-shot.",
                len(missing),
                ", ".join(missing[:5]),
            )
        valid = ids >= 0
        self.support_ids_ = ids
        self.cap_keys_ = as_embeddings(self.index.embeddings(ids[valid]), name="caption keys")
        cap_labels = np.repeat(np.arange(len(classes)), valid.sum(1))
        keys, labels = self.cap_keys_, cap_labels
        share = np.ones(len(cap_labels))
        if X is not None:
            if y is None:
                raise InvalidParameterError("Image shots X need their labels y.")
            views = as_views(X, dim=self.weights_.shape[1])
            img_labels = encode_labels(y, classes, type(self).__name__)
            if len(img_labels) != len(views):
                raise InvalidParameterError(
                    f"X has {len(views)} images but y has {len(img_labels)} labels."
                )
            img_keys = views.mean(axis=1)
            img_keys /= np.linalg.norm(img_keys, axis=1, keepdims=True)
            keys = np.concatenate([img_keys, keys])
            labels = np.concatenate([img_labels, cap_labels])
            share = np.concatenate(
                [
                    np.full(len(img_labels), 1.0 - self.delta),
                    np.full(len(cap_labels), float(self.delta)),
                ]
            )
        is_img = np.arange(len(labels)) < len(labels) - len(cap_labels)
        img_count = np.bincount(labels[is_img], minlength=len(classes))
        cap_count = np.bincount(cap_labels, minlength=len(classes))
        count = np.where(is_img, img_count[labels], cap_count[labels]).astype(np.float64)
        keep = share > 0  # a zero share (delta 0 or 1) drops those keys
        self.alpha_ = 1.0 if self.alpha is None else float(self.alpha)
        self.beta_ = 5.5 if self.beta is None else float(self.beta)
        self.classes_ = classes
        self.logit_scale_ = float(self.encoder.logit_scale)
        self.tip_ = None
        if keep.any():
            self.tip_ = TipAdapter(
                self.zero_shot_,
                alpha=self.alpha_,
                beta=self.beta_,
                gamma=self.gamma,
                kl_temperature=self.kl_temperature,
            )
            self.tip_.fit(keys[keep], labels[keep], sample_weight=share[keep] / count[keep])
        if X_val is not None:
            self._search(X_val, y_val)
        return self

    def _search(self, X_val: Any, y_val: Any) -> None:
        """Choose (beta, alpha) on the validation split with the shared vectorised search."""
        from zsvl.methods.grid_search import tip_grid_counts

        if y_val is None:
            raise InvalidParameterError("X_val needs its labels y_val.")
        y = encode_labels(y_val, self.classset_, type(self).__name__)
        if self.tip_ is None:
            return
        counts = tip_grid_counts(
            self.tip_, X_val, y, betas=BETAS, alphas=ALPHAS, gammas=(float(self.gamma),)
        )[:, :, 0]
        b, a = np.unravel_index(int(np.argmax(counts)), counts.shape)  # first max, beta-major
        self.alpha_, self.beta_ = float(ALPHAS[a]), float(BETAS[b])
        self.val_accuracy_ = float(counts[b, a]) / max(len(y), 1)
        self.tip_.set_params(alpha=self.alpha_, beta=self.beta_)
        logger.info(
            "CaptionSupportAdapter: alpha=%g beta=%g (val acc %.3f)",
            self.alpha_,
            self.beta_,
            self.val_accuracy_,
        )

    def decision_function(self, X: Any) -> np.ndarray:
        """Logits divided by the logit scale (n, C), so predict_proba is softmax(logits)."""
        self._check_fitted()
        if self.tip_ is None:
            return self.zero_shot_.decision_function(X)
        return self.tip_.decision_function(X)
