"""TEENCalibrator (torch float32) against a direct per-prototype float64 numpy computation of
the published formula: w = softmax(tau cos(p_n, p_b)); p' = (1 - lam) p_n + lam normalize(w P_b).
"""

from __future__ import annotations

import numpy as np
import pytest

from zsvl.errors import InvalidParameterError, NotFittedError
from zsvl.methods.teen import TEENCalibrator, teen_calibrate


def direct_teen(p_new, p_base, lam, tau):
    out = []
    base = p_base / np.linalg.norm(p_base, axis=1, keepdims=True)
    for p in p_new:
        p = p / np.linalg.norm(p)
        cos = np.array([p @ b for b in base])
        w = np.exp(tau * cos) / np.exp(tau * cos).sum()
        mix = sum(wb * b for wb, b in zip(w, base, strict=True))
        out.append((1 - lam) * p + lam * mix / np.linalg.norm(mix))
    return np.array(out)


@pytest.mark.parametrize(("lam", "tau"), [(0.5, 16.0), (0.2, 4.0), (0.9, 30.0)])
def test_formula_matches_direct_computation(lam, tau):
    rng = np.random.default_rng(0)
    base, new = rng.normal(size=(7, 12)), rng.normal(size=(3, 12)) * 3.0  # unnormalised input
    got = TEENCalibrator(lam=lam, tau=tau).fit(base).transform(new)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, direct_teen(new, base, lam, tau), rtol=1e-5, atol=1e-6)
    w = TEENCalibrator(lam=lam, tau=tau).fit(base).weights(new)
    np.testing.assert_allclose(w.sum(1), 1.0, rtol=1e-6)


def test_torch_input_and_device_and_clone():
    import torch
    from sklearn.base import clone

    rng = np.random.default_rng(3)
    base, new = rng.normal(size=(9, 6)), rng.normal(size=(4, 6))
    calib = TEENCalibrator(lam=0.3, tau=8.0, device="cpu").fit(torch.as_tensor(base).float())
    assert calib.device_.type == "cpu"
    np.testing.assert_allclose(
        calib.transform(torch.as_tensor(new).float()),
        direct_teen(new, base, 0.3, 8.0),
        rtol=1e-5,
        atol=1e-6,
    )
    twin = clone(calib)
    assert twin.get_params() == calib.get_params() and not hasattr(twin, "base_prototypes_")


def test_limits_and_defaults():
    rng = np.random.default_rng(1)
    base, new = rng.normal(size=(5, 8)), rng.normal(size=(2, 8))
    unit_new = new / np.linalg.norm(new, axis=1, keepdims=True)
    np.testing.assert_allclose(teen_calibrate(new, base, lam=0.0), unit_new, atol=1e-6)
    sharp = TEENCalibrator(lam=1.0, tau=1e4).fit(base)
    nearest = (unit_new @ sharp.base_prototypes_.T).argmax(1)
    np.testing.assert_allclose(sharp.transform(new), sharp.base_prototypes_[nearest], atol=1e-5)
    default = TEENCalibrator()
    assert (default.lam, default.tau) == (0.5, 16.0)
    np.testing.assert_allclose(
        default.fit(base).transform(new), direct_teen(new, base, 0.5, 16.0), rtol=1e-5, atol=1e-6
    )


def test_errors():
    with pytest.raises(InvalidParameterError, match="'lam' parameter of TEENCalibrator"):
        TEENCalibrator(lam=1.5).fit(np.ones((2, 3)))
    with pytest.raises(InvalidParameterError, match="'tau' parameter of TEENCalibrator"):
        TEENCalibrator(tau=0).fit(np.ones((2, 3)))
    with pytest.raises(NotFittedError, match="call fit"):
        TEENCalibrator().transform(np.ones((1, 3)))
    with pytest.raises(InvalidParameterError, match="dimension 4"):
        TEENCalibrator().fit(np.ones((2, 3))).transform(np.ones((1, 4)))
