"""TEEN (Wang et al., NeurIPS 2023): training-free calibration of new-class prototypes.

A prototype estimated from a few shots of a new class is pulled toward a mix of the
well-estimated base-class prototypes it resembles. With p_n and p_b L2-normalised::

    w   = softmax(tau * cos(p_n, p_b))                  over the base classes b
    p_n' = (1 - lam) p_n + lam * normalize(sum_b w_b p_b)

All new prototypes are calibrated with two matrix products, in torch float32 on ``device``
like the other heads. Use the calibrated prototypes in a cosine (nearest-prototype) classifier
together with the base prototypes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from zsvl.arrays import as_embeddings
from zsvl.errors import NotFittedError
from zsvl.methods.adapter_base import check_number, torch_device

__all__ = ["TEENCalibrator", "teen_calibrate"]


class TEENCalibrator(BaseEstimator):
    """Calibrate new-class prototypes with base-class prototypes (a scikit-learn transformer).

    Parameters
    ----------
    lam : float in [0, 1], how far new prototypes move toward the base mix (0.5 in TEEN).
    tau : float > 0, softmax temperature on cosines (16 in TEEN).
    device : torch device of the math (default: the device of torch base prototypes, else CPU).

    Attributes (after ``fit``): ``base_prototypes_`` (float32 (n_base, dim), normalised),
    ``device_``.
    """

    def __init__(self, *, lam: float = 0.5, tau: float = 16.0, device: Any = None) -> None:
        self.lam = lam
        self.tau = tau
        self.device = device

    def fit(self, base_prototypes: Any, y: Any = None) -> TEENCalibrator:
        """Store the base prototypes (n_base, dim), numpy or torch; ``y`` is ignored."""
        name = type(self).__name__
        check_number(self.lam, "lam", name, low=0.0, high=1.0, low_inclusive=True)
        check_number(self.tau, "tau", name, low=0.0)
        device = self.device
        if device is None and hasattr(base_prototypes, "device"):
            device = base_prototypes.device
        self.device_ = torch_device(device)
        base = as_embeddings(base_prototypes, name="base_prototypes")
        self._base_t = self._unit(base)
        self.base_prototypes_ = self._base_t.cpu().numpy()
        return self

    def _unit(self, X: np.ndarray) -> Any:
        import torch

        return torch.nn.functional.normalize(torch.as_tensor(X, device=self.device_), dim=1)

    def _new(self, new_prototypes: Any) -> Any:
        if not hasattr(self, "base_prototypes_"):
            raise NotFittedError("This TEENCalibrator is not fitted yet; call fit() first.")
        P = as_embeddings(new_prototypes, dim=self.base_prototypes_.shape[1], name="new_prototypes")
        return self._unit(P)

    def _weights(self, P: Any) -> Any:
        import torch

        return torch.softmax(float(self.tau) * (P @ self._base_t.T), dim=1)

    def weights(self, new_prototypes: Any) -> np.ndarray:
        """The mixing weights w = softmax(tau cos(p_n, p_b)), shape (n_new, n_base)."""
        import torch

        with torch.inference_mode():
            return self._weights(self._new(new_prototypes)).cpu().numpy()

    def transform(self, new_prototypes: Any) -> np.ndarray:
        """Calibrated prototypes (n_new, dim), float32 (not re-normalised, as in TEEN)."""
        import torch

        with torch.inference_mode():
            P = self._new(new_prototypes)
            mix = torch.nn.functional.normalize(self._weights(P) @ self._base_t, dim=1)
            lam = float(self.lam)
            return ((1.0 - lam) * P + lam * mix).cpu().numpy()


def teen_calibrate(
    new_prototypes: Any, base_prototypes: Any, *, lam: float = 0.5, tau: float = 16.0
) -> np.ndarray:
    """``TEENCalibrator(lam=lam, tau=tau).fit(base_prototypes).transform(new_prototypes)``."""
    return TEENCalibrator(lam=lam, tau=tau).fit(base_prototypes).transform(new_prototypes)
