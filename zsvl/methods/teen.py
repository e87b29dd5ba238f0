"""TEEN (Wang et al., NeurIPS 2023): training-free calibration of new-class prototypes.

A prototype estimated from a few shots of a new class is pulled toward a mix of the
well-estimated base-class prototypes it resembles. With p_n and p_b L2-normalised::

    w   = softmax(tau * cos(p_n, p_b))                  over the base classes b
    p_n' = (1 - lam) p_n + lam * normalize(sum_b w_b p_b)

All new prototypes are calibrated with two matrix products. Use the calibrated prototypes in a
cosine (nearest-prototype) classifier together with the base prototypes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from zsvl.arrays import as_embeddings, l2_normalize
from zsvl.errors import NotFittedError
from zsvl.methods.adapter_base import check_number

__all__ = ["TEENCalibrator", "teen_calibrate"]


class TEENCalibrator:
    """Calibrate new-class prototypes with base-class prototypes (a transformer).

    Parameters
    ----------
    lam : float in [0, 1], how far new prototypes move toward the base mix (0.5 in TEEN).
    tau : float > 0, softmax temperature on cosines (16 in TEEN).

    Attributes (after ``fit``): ``base_prototypes_`` (float32 (n_base, dim), normalised).
    """

    def __init__(self, *, lam: float = 0.5, tau: float = 16.0) -> None:
        self.lam = lam
        self.tau = tau

    def fit(self, base_prototypes: Any, y: Any = None) -> TEENCalibrator:
        """Store the base prototypes (n_base, dim), numpy or torch; ``y`` is ignored."""
        name = type(self).__name__
        check_number(self.lam, "lam", name, low=0.0, high=1.0, low_inclusive=True)
        check_number(self.tau, "tau", name, low=0.0)
        self.base_prototypes_ = l2_normalize(as_embeddings(base_prototypes, name="base_prototypes"))
        return self

    def weights(self, new_prototypes: Any) -> np.ndarray:
        """The mixing weights w = softmax(tau cos(p_n, p_b)), shape (n_new, n_base)."""
        if not hasattr(self, "base_prototypes_"):
            raise NotFittedError("This TEENCalibrator is not fitted yet; call fit() first.")
        P = l2_normalize(as_embeddings(new_prototypes, dim=self.base_prototypes_.shape[1],
                                       name="new_prototypes"))
        z = float(self.tau) * (P.astype(np.float64) @ self.base_prototypes_.T.astype(np.float64))
        z -= z.max(axis=1, keepdims=True)
        w = np.exp(z)
        return w / w.sum(axis=1, keepdims=True)

    def transform(self, new_prototypes: Any) -> np.ndarray:
        """Calibrated prototypes (n_new, dim), float32 (not re-normalised, as in TEEN)."""
        w = self.weights(new_prototypes)
        P = l2_normalize(as_embeddings(new_prototypes, name="new_prototypes")).astype(np.float64)
        mix = l2_normalize(w @ self.base_prototypes_.astype(np.float64)).astype(np.float64)
        lam = float(self.lam)
        return ((1.0 - lam) * P + lam * mix).astype(np.float32)


def teen_calibrate(
    new_prototypes: Any, base_prototypes: Any, *, lam: float = 0.5, tau: float = 16.0
) -> np.ndarray:
    """``TEENCalibrator(lam=lam, tau=tau).fit(base_prototypes).transform(new_prototypes)``."""
    return TEENCalibrator(lam=lam, tau=tau).fit(base_prototypes).transform(new_prototypes)
