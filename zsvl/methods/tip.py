"""Tip-Adapter (Zhang et al., ECCV 2022), training-free, with the optional Tip-X KL term (SuS-X).

The cache holds one key per labelled image, the normalised mean of its augmented views, and a
one-hot value (optionally scaled per key by ``sample_weight``). Tip-Adapter's reference averages
the raw (unnormalised) view features before normalising; zsvl does the same when it knows the
raw features (raw views as X, ``view_norms=`` or shots carrying ``view_norms``), and otherwise
averages the normalised views zsvl encoders return (measured on the toy suite, 4 shots x 10
views: keys differ by cosine >= 0.9928 and 0-1.4% of test predictions change). For image embeddings x (rows of X)::

    affinity A = X K^T                                       (n, n_keys)
    logits     = logit_scale X T^T + alpha exp(-beta (1 - A)) L  [+ gamma (-KL~) L]

where T are the zero-shot text weights and L the one-hot values. The optional Tip-X term
compares class-probability signatures p = softmax(x T^T / kl_temperature) of the query and q of
each key: KL(p || q) = sum p log p - p (log q)^T, one matrix product for all pairs. SuS-X
rescales that matrix into the range of the affinities using the minimum and maximum over the
current batch of queries, which makes one image's prediction depend on the others; zsvl fixes
the two ranges at fit time from the keys themselves (key-to-key KL and key-to-key affinity), so
predictions are per image.

``L`` is never materialised for the products: the sum over keys of each class is a reshape-sum
when every class has the same number of keys (keys are stored shot-major) and an ``index_add``
otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from zsvl.arrays import as_embeddings, l2_normalize
from zsvl.classes import ClassSet
from zsvl.errors import InvalidParameterError
from zsvl.methods.adapter_base import (
    as_views,
    check_number,
    encode_labels,
    resolve_zero_shot,
)
from zsvl.methods.base import ScoreClassifier

__all__ = ["TipAdapter", "TipXAdapter", "KeyLayout"]

logger = logging.getLogger(__name__)

_KL_RANGE_KEYS = 4096  # keys used to fix the Tip-X rescaling range (a fixed, evenly spaced subset)


class KeyLayout:
    """How cache keys are ordered, so ``E @ L`` is a cheap sum over each class's keys.

    With every class holding ``k`` keys, keys are stored shot-major (key ``s * C + c`` is shot
    ``s`` of class ``c``) and the class sums are ``E.view(n, k, C).sum(1)``. Otherwise keys are
    sorted by class and summed with ``index_add_``.
    """

    def __init__(
        self, labels: np.ndarray, n_classes: int, weights: np.ndarray | None = None
    ) -> None:
        counts = np.bincount(labels, minlength=n_classes)
        self.n_classes = n_classes
        self.per_class = int(counts[0]) if (counts == counts[0]).all() and counts[0] > 0 else 0
        by_class = np.argsort(labels, kind="stable")
        if self.per_class:  # rank of each key inside its class, then shot-major order
            rank = np.empty(len(labels), dtype=np.int64)
            rank[by_class] = np.arange(len(labels)) % self.per_class
            self.order = np.lexsort((labels, rank))
        else:
            self.order = by_class
        self.labels = labels[self.order]
        self.weights = None if weights is None else np.asarray(weights, np.float32)[self.order]
        self._labels_t: Any = None
        self._weights_t: Any = None

    def segment_sum(self, E: Any) -> Any:
        """Per-class sums of the columns of E (n, n_keys) in layout order, each column times its
        key's value weight (one when unweighted) -> (n, n_classes)."""
        import torch

        n = E.shape[0]
        if self.weights is not None:
            if self._weights_t is None or self._weights_t.device != E.device:
                self._weights_t = torch.as_tensor(self.weights, device=E.device)
            E = E * self._weights_t
        if self.per_class:
            return E.view(n, self.per_class, self.n_classes).sum(1)
        if self._labels_t is None or self._labels_t.device != E.device:
            self._labels_t = torch.as_tensor(self.labels, device=E.device)
        out = torch.zeros(n, self.n_classes, dtype=E.dtype, device=E.device)
        return out.index_add_(1, self._labels_t, E)


class TipAdapter(ScoreClassifier):
    """Tip-Adapter: zero-shot logits plus a key-value cache of the few-shot images.

    Parameters
    ----------
    zero_shot : fitted ZeroShotClassifier, or text weights of shape (n_classes, dim).
    alpha : float >= 0, weight of the cache term (residual ratio).
    beta : float > 0, sharpness of the affinity exp(-beta (1 - cos)).
    gamma : float >= 0, weight of the Tip-X KL-signature term (0: plain Tip-Adapter).
    kl_temperature : float > 0, temperature of the Tip-X signatures softmax(x T^T / t).
    classes, logit_scale : with raw text weights: class names and the model's logit scale.
    device : torch device of the matrix products (default: the zero-shot encoder's, else CPU).
    batch_size : query rows per chunk in ``decision_function``.

    Attributes (after ``fit``): ``classes_``, ``logit_scale_``, ``keys_`` (float32,
    (n_keys, dim)), ``key_labels_`` (int64, (n_keys,)), ``key_weights_`` (float32 (n_keys,) or
    None: the value weight of each key), ``text_weights_`` (float32, (n_classes, dim)).

    ``decision_function`` returns logits / logit_scale, so ``predict_proba`` is the softmax of
    the full Tip-Adapter logits.
    """

    def __init__(
        self,
        zero_shot: Any,
        *,
        alpha: float = 1.0,
        beta: float = 1.0,
        gamma: float = 0.0,
        kl_temperature: float = 0.5,
        classes: ClassSet | Sequence[str] | None = None,
        logit_scale: float | None = None,
        device: Any = None,
        batch_size: int = 4096,
    ) -> None:
        self.zero_shot = zero_shot
        self.alpha = alpha
        self.beta = beta
        self.gamma = gamma
        self.kl_temperature = kl_temperature
        self.classes = classes
        self.logit_scale = logit_scale
        self.device = device
        self.batch_size = batch_size

    def _check_params(self) -> None:
        name = type(self).__name__
        check_number(self.alpha, "alpha", name, low=0.0, low_inclusive=True)
        check_number(self.beta, "beta", name, low=0.0)
        check_number(self.gamma, "gamma", name, low=0.0, low_inclusive=True)
        check_number(self.kl_temperature, "kl_temperature", name, low=0.0)
        check_number(self.batch_size, "batch_size", name, low=1, low_inclusive=True, integer=True)

    def fit(
        self, X: Any, y: Any, sample_weight: Any = None, *, view_norms: Any = None
    ) -> TipAdapter:
        """Build the cache from shot embeddings.

        X : (n_images, dim) or (n_images, n_views, dim), numpy or torch; ShotEmbeddings too
            (its views, and its ``view_norms`` when it carries them). One key per image: the
            normalised mean of its views.
        y : (n_images,) labels (ints in [0, C) or class names).
        sample_weight : optional (n_images,) positive weights; each key's one-hot value row
            is multiplied by its weight (the caption support set uses 1 / class count).
        view_norms : optional (n_images, n_views) norms of the raw view features before the
            encoder normalised them. With them the key is normalize(mean of the raw views),
            exactly Tip-Adapter's ``build_cache_model``; without them (zsvl encoders return
            normalised views) it is normalize(mean of the normalised views). Raw (unnormalised)
            views passed as X give the reference's keys directly.
        """
        self._check_params()
        name = type(self).__name__
        head = resolve_zero_shot(
            self.zero_shot,
            classes=self.classes,
            logit_scale=self.logit_scale,
            device=self.device,
            owner=name,
        )
        if view_norms is None:
            view_norms = getattr(X, "view_norms", None)
        views = as_views(getattr(X, "views", X), dim=head.weights.shape[1])
        labels = encode_labels(y, head.classes, name)
        if len(labels) != len(views):
            raise InvalidParameterError(
                f"X has {len(views)} images but y has {len(labels)} labels."
            )
        if len(labels) == 0:
            raise InvalidParameterError(
                "TipAdapter needs at least one labelled image to build its cache."
            )
        weights = None
        if sample_weight is not None:
            weights = np.asarray(sample_weight, dtype=np.float64)
            if weights.shape != labels.shape or not np.all(np.isfinite(weights) & (weights > 0)):
                raise InvalidParameterError(
                    f"sample_weight of {name} must hold {len(labels)} positive finite weights, "
                    f"one per image. Got shape {weights.shape}."
                )
        if view_norms is not None:
            norms = np.asarray(view_norms, dtype=np.float32)
            if norms.shape != views.shape[:2]:
                raise InvalidParameterError(
                    f"view_norms must have shape {views.shape[:2]} (n_images, n_views). "
                    f"Got {norms.shape}."
                )
            views = views * norms[:, :, None]
        layout = KeyLayout(labels, len(head.classes), weights)
        self.layout_ = layout
        self.keys_ = l2_normalize(views.mean(axis=1))[layout.order]
        self.key_labels_ = layout.labels
        self.key_weights_ = layout.weights
        self.text_weights_ = head.weights
        self.classes_ = head.classes
        self.logit_scale_ = head.logit_scale
        self.device_ = head.device
        # derived tensors, filled on first use: a memo whose identity never changes, so that
        # scoring leaves the fitted state (and __dict__) as fit made it
        self._memo: dict[str, Any] = {}
        return self

    # -- the pieces of the logits, also used by the hyperparameter search -------------------
    def _torch(self, X: Any) -> Any:
        import torch

        X = as_embeddings(X, dim=self.keys_.shape[1])
        return torch.as_tensor(X, device=self.device_)

    def _tensors(self) -> tuple[Any, Any]:
        import torch

        cached = self._memo.get("tensors")
        if cached is None or cached[0].device != self.device_:
            cached = (
                torch.as_tensor(self.keys_, device=self.device_),
                torch.as_tensor(self.text_weights_, device=self.device_),
            )
            self._memo["tensors"] = cached
        return cached

    def affinity_torch(self, X: Any) -> Any:
        """Cosine affinities X K^T as a torch tensor (n, n_keys) on the adapter's device."""
        self._check_fitted()
        keys, _ = self._tensors()
        return self._torch(X) @ keys.T

    def cache_logits(self, X: Any, beta: float | None = None) -> np.ndarray:
        """exp(-beta (1 - X K^T)) L, shape (n, n_classes); ``beta`` defaults to ``self.beta``."""
        import torch

        self._check_fitted()
        beta = self.beta if beta is None else beta
        Xt = self._torch(X)
        keys, _ = self._tensors()
        out = []
        with torch.inference_mode():
            for start in range(0, len(Xt), self.batch_size):
                A = Xt[start : start + self.batch_size] @ keys.T
                out.append(self.layout_.segment_sum(A.sub_(1.0).mul_(beta).exp_()))
        return _cat_numpy(out, len(self.classes_))

    def kl_logits(self, X: Any) -> np.ndarray:
        """The Tip-X term before gamma: -(KL(p_x || q_key) rescaled) L, shape (n, n_classes)."""
        import torch

        self._check_fitted()
        Xt = self._torch(X)
        keys, text = self._tensors()
        log_q = torch.log_softmax(keys @ text.T / self.kl_temperature, dim=1)
        kl_lo, kl_hi, aff_lo, aff_hi = self._kl_rescaling(log_q, keys)
        slope = (aff_hi - aff_lo) / max(kl_hi - kl_lo, 1e-12)
        out = []
        with torch.inference_mode():
            for start in range(0, len(Xt), self.batch_size):
                x = Xt[start : start + self.batch_size]
                kl = _kl_matrix(torch.log_softmax(x @ text.T / self.kl_temperature, 1), log_q)
                out.append(self.layout_.segment_sum(kl.sub_(kl_lo).mul_(-slope).sub_(aff_lo)))
        return _cat_numpy(out, len(self.classes_))

    def _kl_rescaling(self, log_q: Any, keys: Any) -> tuple[float, float, float, float]:
        """Off-diagonal min/max of key-to-key KL and of key-to-key affinity (fixed at fit)."""
        import torch

        if "kl_range" not in self._memo:
            n = len(keys)
            pick = np.linspace(0, n - 1, min(n, _KL_RANGE_KEYS)).round().astype(np.int64)
            sub_q, sub_k = log_q[pick], keys[pick]
            kl, aff = _kl_matrix(sub_q, sub_q), sub_k @ sub_k.T
            if len(pick) > 1:
                off = ~torch.eye(len(pick), dtype=torch.bool, device=keys.device)
                kl, aff = kl[off], aff[off]
            self._memo["kl_range"] = (
                float(kl.min()),
                float(kl.max()),
                float(aff.min()),
                float(aff.max()),
            )
        return self._memo["kl_range"]

    def zero_shot_logits(self, X: Any) -> np.ndarray:
        """logit_scale * X T^T, shape (n, n_classes)."""
        import torch

        self._check_fitted()
        _, text = self._tensors()
        with torch.inference_mode():
            return (self._torch(X) @ text.T).mul_(self.logit_scale_).cpu().numpy()

    def decision_function(self, X: Any) -> np.ndarray:
        """Tip-Adapter logits divided by ``logit_scale_``, shape (n_samples, n_classes)."""
        self._check_fitted()
        logits = self.zero_shot_logits(X)
        if self.alpha:
            logits += self.alpha * self.cache_logits(X)
        if self.gamma:
            logits += self.gamma * self.kl_logits(X)
        return logits / self.logit_scale_


def _kl_matrix(log_p: Any, log_q: Any) -> Any:
    """KL(p_i || q_j) for all pairs as one product: sum p log p - p (log q)^T; (n, m)."""
    p = log_p.exp()
    return (p * log_p).sum(1, keepdim=True) - p @ log_q.T


def _cat_numpy(chunks: list[Any], n_classes: int) -> np.ndarray:
    import torch

    if not chunks:
        return np.zeros((0, n_classes), dtype=np.float32)
    return torch.cat(chunks).cpu().numpy()


class TipXAdapter(TipAdapter):
    """Tip-Adapter with the Tip-X KL-signature term switched on (``gamma`` default 1.0).

    Same parameters and attributes as :class:`TipAdapter`; only the default of ``gamma``
    differs.
    """

    def __init__(
        self,
        zero_shot: Any,
        *,
        alpha: float = 1.0,
        beta: float = 1.0,
        gamma: float = 1.0,
        kl_temperature: float = 0.5,
        classes: ClassSet | Sequence[str] | None = None,
        logit_scale: float | None = None,
        device: Any = None,
        batch_size: int = 4096,
    ) -> None:
        super().__init__(
            zero_shot,
            alpha=alpha,
            beta=beta,
            gamma=gamma,
            kl_temperature=kl_temperature,
            classes=classes,
            logit_scale=logit_scale,
            device=device,
            batch_size=batch_size,
        )
