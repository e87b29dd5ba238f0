"""Caption support sets: a Tip-Adapter-style cache whose keys are retrieved caption embeddings.

No labelled image is needed. For each class, the caption index is searched with the class's
prompt embedding; captions that name the class (every word of the class name, singular or plural)
are kept first, then the nearest others, up to ``m`` per class. Their stored text embeddings are
cache keys K_cap (M, dim) with the class as value (L_cap, one-hot rows divided by the class's key
count so that classes with fewer captions are not penalised). For image embeddings x (n, dim):

    logits = s * x T^T + alpha * A_cap L_cap [+ gamma * S_kl L_cap] [+ image-shot term]
    A_cap = exp(-beta * (1 - x K_cap^T))

with s the logit scale. With labelled shots (``fit(X, y)``) an image cache is mixed in as
(1 - delta) * A_img L_img + delta * A_cap L_cap (CapS-Adapter's mixing, on the cache outputs).
The optional KL term is SuS-X's TIP-X: S_kl = -KL(p(x) || p(k)) between class-probability
signatures (softmax over classes, temperature ``kl_temperature``), min-max rescaled per row.
alpha/beta default to values that need no labels; ``fit(X_val=..., y_val=...)`` searches them on
a validation split (vectorised: one affinity matrix, one exp per beta).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from zsvl.arrays import as_embeddings
from zsvl.errors import IndexMismatchError, InvalidParameterError
from zsvl.methods.base import ScoreClassifier
from zsvl.methods.zeroshot import class_text_weights
from zsvl.models.base import Encoder
from zsvl.text.candidates import singularize, tokenize
from zsvl.text.classes import ClassSet, as_classset
from zsvl.text.templates import load_templates

__all__ = ["CaptionSupportAdapter", "select_support_captions", "mentions_class"]

logger = logging.getLogger(__name__)

ALPHAS = (0.0, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
BETAS = (1.0, 3.0, 5.5, 10.0, 20.0, 40.0)


def mentions_class(caption: str, class_name: str) -> bool:
    """Whether every word of ``class_name`` appears in ``caption`` (singular/plural alike)."""
    words = {singularize(w) for w in tokenize(caption)}
    return all(singularize(w) in words for w in tokenize(class_name))


def select_support_captions(index: Any, queries: np.ndarray, names: Sequence[str], m: int, *,
                            fetch_factor: int = 4, selection: str = "mention_then_nearest"
                            ) -> tuple[np.ndarray, np.ndarray]:
    """Caption ids (C, m) per class (-1 pads) and the number kept per class (C,).

    selection : "nearest" (the m nearest), "mention" (only captions naming the class), or
    "mention_then_nearest" (naming ones first, nearest others to fill up to m).
    """
    if selection not in ("nearest", "mention", "mention_then_nearest"):
        raise InvalidParameterError(
            f"selection must be 'nearest', 'mention' or 'mention_then_nearest'. Got {selection!r}.")
    fetch = m if selection == "nearest" else m * fetch_factor
    res = index.search(queries, fetch)
    out = np.full((len(names), m), -1, dtype=np.int64)
    for c, name in enumerate(names):
        ids = res.ids[c][res.ids[c] >= 0]
        if selection != "nearest":
            named = np.array([mentions_class(t, name) for t in res.captions[c]], dtype=bool)
            ids = np.concatenate([ids[named], ids[~named]]) if selection != "mention" else ids[named]
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
    gamma : weight of the KL-signature term (0 = off).
    delta : weight of the caption cache against the image-shot cache when shots are given.
    selection : see :func:`select_support_captions`.
    kl_temperature : temperature of the class-probability signatures (0.5 as in SuS-X).
    """

    def __init__(self, encoder: Encoder, classes: ClassSet | Sequence[str] | None = None, *,
                 index: Any = None, templates: str | Sequence[str] | None = None, m: int = 32,
                 alpha: float | None = None, beta: float | None = None, gamma: float = 0.0,
                 delta: float = 0.5, selection: str = "mention_then_nearest",
                 kl_temperature: float = 0.5, batch_size: int = 256) -> None:
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
        if self.classes is None or self.index is None:
            raise InvalidParameterError("CaptionSupportAdapter needs classes=[...] and index=.")
        if not isinstance(self.m, int) or self.m < 1:
            raise InvalidParameterError(f"The 'm' parameter of CaptionSupportAdapter must be an int >= 1. Got {self.m!r}.")
        for name in ("alpha", "beta"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int | float) or v < 0):
                raise InvalidParameterError(
                    f"The '{name}' parameter of CaptionSupportAdapter must be a float >= 0. Got {v!r}.")
        if not 0.0 <= self.delta <= 1.0:
            raise InvalidParameterError(f"delta must be in [0, 1]. Got {self.delta!r}.")
        fp = self.index.manifest["encoder"]["fingerprint"]
        if self.index.dim != self.encoder.embed_dim or fp != self.encoder.fingerprint:
            raise IndexMismatchError(
                f"The caption index was built with {fp} (dim {self.index.dim}) but the encoder is "
                f"{self.encoder.fingerprint} (dim {self.encoder.embed_dim}).")

    def fit(self, X: Any = None, y: Any = None, *, X_val: Any = None, y_val: Any = None
            ) -> CaptionSupportAdapter:
        """Retrieve the caption support set; X, y : optional labelled image shots (n, dim), (n,);
        X_val, y_val : optional validation split used to choose alpha and beta."""
        self._validate()
        classes = as_classset(self.classes)
        templates = self.templates or getattr(self.encoder, "default_templates", "single")
        self.templates_ = load_templates(templates)
        self.weights_ = class_text_weights(self.encoder, classes, self.templates_,
                                           batch_size=self.batch_size)
        ids, counts = select_support_captions(self.index, self.weights_, classes.names, self.m,
                                              selection=self.selection)
        if (counts == 0).any():
            missing = [classes.names[c] for c in np.flatnonzero(counts == 0)]
            logger.warning("No support captions for %d classes (%s); they rely on zero-shot.",
                           len(missing), ", ".join(missing[:5]))
        valid = ids >= 0
        self.support_ids_ = ids
        self.cap_keys_ = self.index.embeddings(ids[valid])
        labels = np.repeat(np.arange(len(classes)), valid.sum(1))
        self.cap_values_ = self._values(labels, len(classes))
        self.img_keys_ = self.img_values_ = None
        if X is not None:
            if y is None:
                raise InvalidParameterError("Image shots X need their labels y.")
            self.img_keys_ = as_embeddings(X, dim=self.weights_.shape[1])
            self.img_values_ = self._values(np.asarray(y, dtype=np.int64), len(classes))
        self.classes_ = classes
        self.logit_scale_ = float(self.encoder.logit_scale)
        self.alpha_ = 1.0 if self.alpha is None else float(self.alpha)
        self.beta_ = 5.5 if self.beta is None else float(self.beta)
        if X_val is not None:
            self._search(as_embeddings(X_val, dim=self.weights_.shape[1]), np.asarray(y_val))
        return self

    @staticmethod
    def _values(labels: np.ndarray, n_classes: int) -> np.ndarray:
        """One-hot (n, C) rows divided by their class's count."""
        L = np.zeros((len(labels), n_classes), dtype=np.float32)
        L[np.arange(len(labels)), labels] = 1.0
        return L / np.maximum(L.sum(0, keepdims=True), 1.0)

    # -- scoring ---------------------------------------------------------------------------
    def _parts(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """Zero-shot cosines (n, C), caption and image affinities x K^T, and the KL term."""
        parts = {"zs": X @ self.weights_.T, "cap": X @ self.cap_keys_.T}
        if self.img_keys_ is not None:
            parts["img"] = X @ self.img_keys_.T
        if self.gamma:
            parts["kl"] = self._kl_term(X)
        return parts

    def _kl_term(self, X: np.ndarray) -> np.ndarray:
        """-KL(p(x) || p(k)) per (image, key), min-max rescaled per row, times L_cap: (n, C)."""
        t = self.kl_temperature

        def log_sig(E: np.ndarray) -> np.ndarray:
            z = (E @ self.weights_.T) / t
            z -= z.max(1, keepdims=True)
            return z - np.log(np.exp(z).sum(1, keepdims=True))

        lp, lq = log_sig(X), log_sig(self.cap_keys_)
        p = np.exp(lp)
        kl = (p * lp).sum(1, keepdims=True) - p @ lq.T  # (n, M)
        s = -kl
        lo, hi = s.min(1, keepdims=True), s.max(1, keepdims=True)
        return ((s - lo) / np.maximum(hi - lo, 1e-12)) @ self.cap_values_

    def _combine(self, parts: dict[str, np.ndarray], alpha: float, beta: float) -> np.ndarray:
        cache = np.exp(-beta * (1.0 - parts["cap"])) @ self.cap_values_
        if "img" in parts:
            img = np.exp(-beta * (1.0 - parts["img"])) @ self.img_values_
            cache = (1.0 - self.delta) * img + self.delta * cache
        logits = self.logit_scale_ * parts["zs"] + alpha * cache
        if "kl" in parts:
            logits = logits + self.gamma * parts["kl"]
        return logits

    def _search(self, X: np.ndarray, y: np.ndarray) -> None:
        parts = self._parts(X)
        best = (-1.0, self.alpha_, self.beta_)
        for beta in BETAS:
            base = self._combine({**parts}, 0.0, beta)
            cache = self._combine(parts, 1.0, beta) - base
            for alpha in ALPHAS:
                acc = float(((base + alpha * cache).argmax(1) == y).mean())
                if acc > best[0]:
                    best = (acc, alpha, beta)
        self.val_accuracy_, self.alpha_, self.beta_ = best
        logger.info("CaptionSupportAdapter: alpha=%g beta=%g (val acc %.3f)", self.alpha_,
                    self.beta_, self.val_accuracy_)

    def decision_function(self, X: Any) -> np.ndarray:
        """Logits divided by the logit scale (n, C), so predict_proba is softmax(logits)."""
        self._check_fitted()
        X = as_embeddings(X, dim=self.weights_.shape[1])
        return self._combine(self._parts(X), self.alpha_, self.beta_) / self.logit_scale_
