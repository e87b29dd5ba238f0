"""Unsupervised (transductive) GDA: EM over a shared-covariance Gaussian mixture.

No labels are used. The mixture has one component per class; EM starts from CLIP's zero-shot
posteriors R = softmax(logit_scale X T^T) of the unlabelled features X (n, D) and alternates

- M-step: N_c = sum_i R_ic, mu_c = R_c^T X / N_c, scatter S = X^T X - sum_c N_c mu_c mu_c^T
  (X^T X is computed once), Sigma = the paper's ridge estimate of GDA from S and n;
- E-step: R = softmax(log pi + x inv(Sigma) mu^T - 1/2 mu inv(Sigma) mu^T), the exact Gaussian
  posterior with a shared covariance (a Cholesky solve in float64);

until the mean total-variation change of the rows of R falls below ``tol`` or ``max_iter``
M/E rounds have run. The fitted head gives logits = logit_scale x T^T + alpha (x W + b) with W, b
the mixture's log-posterior terms (proper Gaussian scale, so ``alpha = 1`` multiplies the
zero-shot and the mixture posteriors).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from zsvl.arrays import as_embeddings
from zsvl.classes import ClassSet
from zsvl.methods.adapter_base import check_choice, check_number, resolve_zero_shot
from zsvl.methods.base import ScoreClassifier
from zsvl.methods.gda import GaussianHeadScores, covariance_estimate, gaussian_head

__all__ = ["GDAEMAdapter"]

logger = logging.getLogger(__name__)


class GDAEMAdapter(GaussianHeadScores, ScoreClassifier):
    """GDA fitted without labels by EM on unlabelled features (transductive).

    Parameters
    ----------
    zero_shot : fitted ZeroShotClassifier, or text weights of shape (n_classes, dim).
    alpha : float >= 0, weight of the mixture's log-posterior in the final logits.
    max_iter : int >= 0, most EM rounds (0: the Gaussian fitted to the zero-shot posteriors).
    tol : float >= 0, stop when the mean total-variation change of the posteriors is below it.
    ridge : float > 0, multiplier of GDA's ridge shrinkage.
    priors : "uniform" (fixed, the default: robust to clusters that empty out) or "estimated"
        (mixing weights re-estimated each M-step).
    classes, logit_scale, device : as for :class:`~zsvl.methods.gda.GDAAdapter`.

    Attributes (after ``fit``): ``classes_``, ``logit_scale_``, ``means_`` (float32 (C, D)),
    ``coef_`` (float32 (C, D)), ``intercept_`` (float32 (C,)), ``n_iter_``, ``converged_``,
    ``deltas_`` (the posterior change of each round), ``labels_`` (int64 (n,), cluster of each
    fitted feature).
    """

    def __init__(
        self,
        zero_shot: Any,
        *,
        alpha: float = 1.0,
        max_iter: int = 10,
        tol: float = 1e-4,
        ridge: float = 1.0,
        priors: str = "uniform",
        classes: ClassSet | Sequence[str] | None = None,
        logit_scale: float | None = None,
        device: Any = None,
    ) -> None:
        self.zero_shot = zero_shot
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.ridge = ridge
        self.priors = priors
        self.classes = classes
        self.logit_scale = logit_scale
        self.device = device

    def _check_params(self) -> None:
        name = type(self).__name__
        check_number(self.alpha, "alpha", name, low=0.0, low_inclusive=True)
        check_number(self.max_iter, "max_iter", name, low=0, low_inclusive=True, integer=True)
        check_number(self.tol, "tol", name, low=0.0, low_inclusive=True)
        check_number(self.ridge, "ridge", name, low=0.0)
        check_choice(self.priors, "priors", name, ("uniform", "estimated"))

    def fit(self, X: Any, y: Any = None) -> GDAEMAdapter:
        """Run EM on unlabelled features X (n_samples, dim); ``y`` is ignored (no labels)."""
        import torch

        self._check_params()
        head = resolve_zero_shot(
            self.zero_shot,
            classes=self.classes,
            logit_scale=self.logit_scale,
            device=self.device,
            owner=type(self).__name__,
        )
        X = as_embeddings(X, dim=head.weights.shape[1])
        dev = head.device
        with torch.inference_mode():
            X64 = torch.as_tensor(X, device=dev).double()
            T = torch.as_tensor(head.weights, device=dev).double()
            resp = torch.softmax(head.logit_scale * X64 @ T.T, dim=1)
            gram = X64.T @ X64
            self.deltas_: list[float] = []
            means, converged = None, False
            for step in range(int(self.max_iter) + 1):
                means, cov, log_pi = self._m_step(X64, resp, gram, means)
                W, b = gaussian_head(means, cov, log_pi, scale=1.0)
                if step == self.max_iter or converged:
                    break
                new = torch.softmax(torch.addmm(b, X64, W.T), dim=1)
                self.deltas_.append(float(0.5 * (new - resp).abs().sum(1).mean()))
                resp = new
                converged = self.deltas_[-1] < self.tol
        assert means is not None  # the loop runs at least once (max_iter >= 0 is checked)
        self.n_iter_ = len(self.deltas_)
        self.converged_ = converged
        if not self.converged_ and self.max_iter > 0:
            logger.info(
                "GDA-EM stopped after %d rounds (posterior change %.2g > tol %.2g).",
                self.n_iter_,
                self.deltas_[-1],
                self.tol,
            )
        self.classes_ = head.classes
        self.logit_scale_ = head.logit_scale
        self.device_ = dev
        self.text_weights_ = head.weights
        self.means_ = means.float().cpu().numpy()
        self.coef_ = W.float().cpu().numpy()
        self.intercept_ = b.float().cpu().numpy()
        self.labels_ = resp.argmax(1).cpu().numpy()
        return self

    def _m_step(self, X: Any, resp: Any, gram: Any, previous: Any) -> tuple[Any, Any, Any]:
        """Means (C, D), covariance (D, D) and log priors (C,) from responsibilities (n, C)."""
        import torch

        mass = resp.sum(0)
        means = (resp.T @ X) / mass.clamp_min(1e-12)[:, None]
        empty = mass < 1e-8
        if bool(empty.any()) and previous is not None:  # a cluster lost all its mass
            means[empty] = previous[empty]
        scatter = gram - means.T @ (mass[:, None] * means)
        scatter = 0.5 * (scatter + scatter.T)
        cov = covariance_estimate(scatter, len(X), shrinkage="ridge", ridge=float(self.ridge))
        if self.priors == "estimated":
            log_pi = torch.log((mass / len(X)).clamp_min(1e-12))
        else:
            log_pi = torch.full_like(mass, -np.log(len(mass)))
        return means, cov, log_pi
