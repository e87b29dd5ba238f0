"""GDA (Wang et al., ICLR 2024): Gaussian discriminant analysis on CLIP features, training-free.

Every augmented view is a sample. With class means mu (C, D), the pooled within-class scatter
S = sum_i (x_i - mu_{y_i})^T (x_i - mu_{y_i}) and N samples, the paper's precision is::

    P = D * inv(S + tr(S / (N - 1)) I)               (a ridge-type shrinkage)

computed here with a Cholesky factorisation in float64 (never a pseudo-inverse). Writing any
covariance estimate as Sigma, zsvl uses P = D / (N - 1) * inv(Sigma); the paper's estimate is
Sigma = S / (N - 1) + ridge * tr(S / (N - 1)) / (N - 1) I with ridge = 1. Other estimates:
``shrinkage="ledoit_wolf"`` or ``"oas"`` (scikit-learn on the centred views) or a float
gamma in [0, 1], Sigma = (1 - gamma) S / N + gamma tr(S / N) / D I, the estimate of scikit-learn's
``LinearDiscriminantAnalysis(solver="lsqr", shrinkage=gamma)``. The linear head is::

    W = P mu^T,  b_c = log pi_c - 1/2 mu_c^T P mu_c
    logits = logit_scale x T^T + alpha (x W + b)

Base-to-new: a class without any sample gets the mean of the ``n_neighbors`` (64) sample
features nearest to its text embedding; the covariance stays the one pooled over the classes
that have samples. Any embedding dimension works.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from zsvl.arrays import as_embeddings
from zsvl.classes import ClassSet
from zsvl.errors import InvalidParameterError
from zsvl.methods.adapter_base import (
    as_views,
    check_choice,
    check_number,
    encode_labels,
    resolve_zero_shot,
)
from zsvl.methods.base import ScoreClassifier

__all__ = [
    "GDAAdapter",
    "GaussianHeadScores",
    "class_statistics",
    "covariance_estimate",
    "gaussian_head",
]

logger = logging.getLogger(__name__)

SHRINKAGES = ("ridge", "ledoit_wolf", "oas")
PRIORS = ("uniform", "counts")
_BLOCK_ELEMENTS = 1 << 24  # elements of one float32 block of rows (64 MiB)


def class_statistics(
    X: Any, y: Any, n_classes: int, *, block_elements: int = _BLOCK_ELEMENTS
) -> tuple[Any, Any, Any]:
    """Class means, counts and the pooled within-class scatter, streamed over row blocks.

    X : torch float32 (N, D); y : torch int64 (N,).
    Returns means (C, D) float64 (zero for absent classes), counts (C,) float64 and the scatter
    S (D, D) float64. Each block of rows is summed per class and centred and multiplied in
    float32; the blocks' results are added in float64, so no (N, D) copy is made and rounding
    accumulates over one block only. S is symmetric, so only its upper column blocks are
    multiplied (5/8 of the work at D = 1,024) and mirrored.
    """
    import torch

    D = X.shape[1]
    rows = max(1, block_elements // max(D, 1))
    f64 = dict(dtype=torch.float64, device=X.device)
    sums = torch.zeros(n_classes, D, **f64)
    block_sums = torch.zeros(n_classes, D, dtype=X.dtype, device=X.device)
    for start in range(0, len(X), rows):
        block_sums.zero_().index_add_(0, y[start : start + rows], X[start : start + rows])
        sums += block_sums
    counts = torch.bincount(y, minlength=n_classes).double()
    means = sums / counts.clamp_min(1.0)[:, None]
    means32 = means.float()
    scatter = torch.zeros(D, D, **f64)
    Z_buf = torch.empty(min(rows, len(X)), D, dtype=X.dtype, device=X.device)
    for start in range(0, len(X), rows):
        Z = Z_buf[: len(X[start : start + rows])]
        torch.index_select(means32, 0, y[start : start + rows], out=Z)
        torch.sub(X[start : start + rows], Z, out=Z)  # centred in place, in one reused buffer
        _add_gram_upper(Z, scatter, 0, D)
    upper = torch.triu(scatter, diagonal=1)
    scatter = torch.triu(scatter) + upper.T
    return means, counts, scatter


def _add_gram_upper(Z: Any, out: Any, lo: int, hi: int, *, min_width: int = 256) -> None:
    """out[lo:hi, lo:hi] += the upper triangle (block-wise) of Z[:, lo:hi]^T Z[:, lo:hi].

    Halves recursively: the off-diagonal block is one product, the two diagonal blocks recurse
    until ``min_width`` columns. At D = 1,024 that is 5/8 of the full product's work in seven
    products; narrower blocks would lose more to slower small products than they save.
    """
    if hi - lo <= min_width:
        out[lo:hi, lo:hi] += (Z[:, lo:hi].T @ Z[:, lo:hi]).double()
        return
    mid = (lo + hi) // 2
    out[lo:mid, mid:hi] += (Z[:, lo:mid].T @ Z[:, mid:hi]).double()
    _add_gram_upper(Z, out, lo, mid, min_width=min_width)
    _add_gram_upper(Z, out, mid, hi, min_width=min_width)


def covariance_estimate(
    scatter: Any,
    n_samples: int,
    *,
    shrinkage: str | float = "ridge",
    ridge: float = 1.0,
    centred: Any = None,
) -> Any:
    """The covariance estimate Sigma (D, D) float64 from the pooled scatter (see module doc).

    ``centred`` (N, D), the centred samples, is needed only for "ledoit_wolf" and "oas".
    """
    import torch

    D = scatter.shape[0]
    eye = torch.eye(D, dtype=torch.float64, device=scatter.device)
    trace = float(torch.trace(scatter))
    if trace <= 0.0:
        logger.warning(
            "GDA: the within-class scatter is zero (one sample per class and no views); "
            "using an identity covariance, i.e. a nearest-class-mean head."
        )
        return eye
    if isinstance(shrinkage, str) and shrinkage in ("ledoit_wolf", "oas"):
        from sklearn.covariance import ledoit_wolf, oas

        estimator = ledoit_wolf if shrinkage == "ledoit_wolf" else oas
        Xc = np.asarray(centred.cpu().numpy(), dtype=np.float64)
        cov, amount = estimator(Xc, assume_centered=True)
        logger.debug("GDA %s shrinkage intensity %.4g", shrinkage, amount)
        return torch.as_tensor(cov, dtype=torch.float64, device=scatter.device)
    if isinstance(shrinkage, str):  # "ridge", the paper's estimate
        m = max(n_samples - 1, 1)
        return scatter / m + (ridge * trace / m / m) * eye
    emp = scatter / n_samples
    return (1.0 - shrinkage) * emp + (shrinkage * trace / n_samples / D) * eye


def gaussian_head(means: Any, covariance: Any, log_priors: Any, *, scale: float) -> tuple[Any, Any]:
    """W = scale * inv(Sigma) mu^T as (C, D) and b = log pi - 1/2 mu . W, by Cholesky (float64).

    means (C, D), covariance (D, D), log_priors (C,), all float64 torch tensors.
    """
    import torch

    factor, info = torch.linalg.cholesky_ex(covariance)
    if int(info) != 0:  # not positive definite in floating point: add a tiny ridge
        jitter = 1e-10 * float(torch.trace(covariance)) / covariance.shape[0]
        eye = torch.eye(covariance.shape[0], dtype=covariance.dtype, device=covariance.device)
        factor = torch.linalg.cholesky(covariance + jitter * eye)
    W = scale * torch.cholesky_solve(means.T.contiguous(), factor).T
    b = log_priors - 0.5 * (means * W).sum(1)
    return W, b


class GaussianHeadScores:
    """Scores of a fitted linear Gaussian head beside the zero-shot head (GDA and GDA-EM).

    Needs ``coef_`` (C, D), ``intercept_`` (C,), ``text_weights_`` (C, D), ``logit_scale_``,
    ``device_`` and the ``alpha`` parameter.
    """

    # provided by the estimator this is mixed into (annotations only: nothing is shadowed)
    coef_: np.ndarray
    intercept_: np.ndarray
    text_weights_: np.ndarray
    logit_scale_: float
    device_: Any
    alpha: float
    _check_fitted: Callable[[], None]

    def _torch(self, X: Any) -> Any:
        import torch

        self._check_fitted()
        X = as_embeddings(X, dim=self.coef_.shape[1])
        return torch.as_tensor(X, device=self.device_)

    def gda_logits(self, X: Any) -> np.ndarray:
        """The GDA term x W + b, shape (n_samples, n_classes)."""
        import torch

        Xt = self._torch(X)
        with torch.inference_mode():
            W = torch.as_tensor(self.coef_, device=self.device_)
            b = torch.as_tensor(self.intercept_, device=self.device_)
            return torch.addmm(b, Xt, W.T).cpu().numpy()

    def zero_shot_logits(self, X: Any) -> np.ndarray:
        """logit_scale * X T^T, shape (n_samples, n_classes)."""
        import torch

        Xt = self._torch(X)
        with torch.inference_mode():
            T = torch.as_tensor(self.text_weights_, device=self.device_)
            return (Xt @ T.T).mul_(self.logit_scale_).cpu().numpy()

    def decision_function(self, X: Any) -> np.ndarray:
        """(logit_scale x T^T + alpha (x W + b)) / logit_scale, shape (n_samples, n_classes)."""
        import torch

        Xt = self._torch(X)
        with torch.inference_mode():
            T = torch.as_tensor(self.text_weights_, device=self.device_)
            W = torch.as_tensor(self.coef_, device=self.device_)
            b = torch.as_tensor(self.intercept_, device=self.device_)
            a = float(self.alpha) / self.logit_scale_
            return torch.addmm(a * b, Xt, (T + a * W).T).cpu().numpy()


class GDAAdapter(GaussianHeadScores, ScoreClassifier):
    """GDA: a shared-covariance Gaussian model of the shot features added to zero-shot logits.

    Parameters
    ----------
    zero_shot : fitted ZeroShotClassifier, or text weights of shape (n_classes, dim).
    alpha : float >= 0, weight of the GDA logits.
    shrinkage : "ridge" (the paper's estimate), "ledoit_wolf", "oas" or a float in [0, 1].
    ridge : float > 0, multiplier of the paper's ridge term (1 = the paper).
    priors : "uniform" (the paper), "counts" (class frequencies of the samples) or an array of
        shape (n_classes,) of positive weights.
    n_neighbors : int >= 1, base features averaged to synthesise a class that has no samples.
    classes, logit_scale : with raw text weights: class names and the model's logit scale.
    device : torch device of the math (default: the zero-shot encoder's, else CPU).

    Attributes (after ``fit``): ``classes_``, ``logit_scale_``, ``means_`` (float32 (C, D)),
    ``coef_`` (float32 (C, D), W^T), ``intercept_`` (float32 (C,)), ``priors_`` (float64 (C,)),
    ``class_counts_`` (int64 (C,)), ``synthesized_`` (bool (C,)), ``n_samples_``.
    """

    def __init__(
        self,
        zero_shot: Any,
        *,
        alpha: float = 1.0,
        shrinkage: str | float = "ridge",
        ridge: float = 1.0,
        priors: str | Sequence[float] = "uniform",
        n_neighbors: int = 64,
        classes: ClassSet | Sequence[str] | None = None,
        logit_scale: float | None = None,
        device: Any = None,
    ) -> None:
        self.zero_shot = zero_shot
        self.alpha = alpha
        self.shrinkage = shrinkage
        self.ridge = ridge
        self.priors = priors
        self.n_neighbors = n_neighbors
        self.classes = classes
        self.logit_scale = logit_scale
        self.device = device

    def _check_params(self) -> None:
        name = type(self).__name__
        check_number(self.alpha, "alpha", name, low=0.0, low_inclusive=True)
        check_number(self.ridge, "ridge", name, low=0.0)
        check_number(self.n_neighbors, "n_neighbors", name, low=1, low_inclusive=True, integer=True)
        if isinstance(self.shrinkage, str):
            check_choice(self.shrinkage, "shrinkage", name, SHRINKAGES)
        else:
            check_number(self.shrinkage, "shrinkage", name, low=0.0, high=1.0, low_inclusive=True)
        if isinstance(self.priors, str):
            check_choice(self.priors, "priors", name, PRIORS)

    def fit(self, X: Any, y: Any) -> GDAAdapter:
        """Estimate the Gaussian model from shot features.

        X : (n_samples, dim) or (n_images, n_views, dim), numpy or torch; every view is a sample.
        y : (n_samples,) or (n_images,) labels (ints in [0, C) or class names).
        """
        import torch

        self._check_params()
        name = type(self).__name__
        head = resolve_zero_shot(
            self.zero_shot,
            classes=self.classes,
            logit_scale=self.logit_scale,
            device=self.device,
            owner=name,
        )
        views = as_views(X, dim=head.weights.shape[1], check_finite=False)  # sums checked below
        labels = encode_labels(y, head.classes, name)
        if len(labels) != len(views):
            raise InvalidParameterError(
                f"X has {len(views)} images but y has {len(labels)} labels."
            )
        if len(labels) < 2:
            raise InvalidParameterError(f"{name} needs at least 2 samples. Got {len(labels)}.")
        n_views = views.shape[1]
        C, dev = len(head.classes), head.device
        Xt = torch.as_tensor(views.reshape(-1, views.shape[2]), device=dev)
        yt = torch.as_tensor(np.repeat(labels, n_views), device=dev)
        with torch.inference_mode():
            means, counts, scatter = class_statistics(Xt, yt, C)
            if not bool(torch.isfinite(means).all()):  # every row is in some class's sum
                raise InvalidParameterError("X holds NaN or infinite values.")
            centred = None
            if self.shrinkage in ("ledoit_wolf", "oas"):
                centred = Xt - means.float()[yt]
            cov = covariance_estimate(
                scatter, len(Xt), shrinkage=self.shrinkage, ridge=float(self.ridge), centred=centred
            )
            missing = counts == 0
            if bool(missing.any()):
                means[missing] = self._synthesize(Xt, head.weights[missing.cpu().numpy()])
            log_priors = self._log_priors(counts, missing)
            scale = head.weights.shape[1] / max(len(Xt) - 1, 1)
            W, b = gaussian_head(means, cov, log_priors, scale=scale)
        self.classes_ = head.classes
        self.logit_scale_ = head.logit_scale
        self.device_ = dev
        self.text_weights_ = head.weights
        self.means_ = means.float().cpu().numpy()
        self.coef_ = W.float().cpu().numpy()
        self.intercept_ = b.float().cpu().numpy()
        self.priors_ = log_priors.exp().cpu().numpy()
        self.class_counts_ = (counts.cpu().numpy() / n_views).astype(np.int64)
        self.synthesized_ = missing.cpu().numpy()
        self.n_samples_ = len(Xt)
        return self

    def _synthesize(self, X: Any, text: np.ndarray) -> Any:
        """Means (n_new, D) float64: average of the k features nearest to each class text."""
        import torch

        k = min(int(self.n_neighbors), len(X))
        if k < self.n_neighbors:
            logger.info("GDA base-to-new: only %d base features, using k = %d.", len(X), k)
        T = torch.nn.functional.normalize(torch.as_tensor(text, device=X.device), dim=1)
        nearest = (T @ X.T).topk(k, dim=1).indices  # (n_new, k)
        return X[nearest].double().mean(1)

    def _log_priors(self, counts: Any, missing: Any) -> Any:
        import torch

        C = len(counts)
        if isinstance(self.priors, str) and self.priors == "uniform":
            return torch.full_like(counts, -np.log(C))
        if isinstance(self.priors, str):  # "counts"; synthesised classes get the mean count
            weights = counts.clone()
            weights[missing] = counts[~missing].mean()
        else:
            weights = torch.as_tensor(
                np.asarray(self.priors, dtype=np.float64), device=counts.device
            )
            if weights.shape != (C,) or not bool((weights > 0).all()):
                raise InvalidParameterError(
                    f"The 'priors' parameter of {type(self).__name__} must be 'uniform', "
                    f"'counts' or {C} positive weights. Got {self.priors!r}."
                )
        return torch.log(weights / weights.sum())
