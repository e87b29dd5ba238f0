"""GDAAdapter and GDAEMAdapter against scikit-learn and direct float64 computations."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.metrics import adjusted_rand_score

from zsvl.errors import InvalidParameterError, NotFittedError
from zsvl.methods.gda import GDAAdapter, class_statistics
from zsvl.methods.gda_em import GDAEMAdapter


def gaussian_data(C=5, D=8, n=40, n_test=100, seed=0, spread=1.5):
    """Balanced classes sharing one (random, anisotropic) covariance."""
    rng = np.random.default_rng(seed)
    mu = rng.normal(size=(C, D)) * spread
    mix = rng.normal(size=(D, D)) / np.sqrt(D)

    def draw(m):
        return (mu[:, None, :] + rng.normal(size=(C, m, D)) @ mix).reshape(-1, D)

    y, y_test = np.repeat(np.arange(C), n), np.repeat(np.arange(C), n_test)
    return draw(n).astype(np.float32), y, draw(n_test).astype(np.float32), y_test, mu


def pairwise_diffs(scores):
    return scores[:, 1:] - scores[:, :1]


def assert_logits_close(actual, desired):
    """Equal up to float32 rounding of logits of this magnitude."""
    np.testing.assert_allclose(actual, desired, rtol=1e-4, atol=1e-5 * np.abs(desired).max())


def test_paper_ridge_matches_lda_with_the_same_shrinkage():
    X, y, Xt, _, _ = gaussian_data()
    N, D = X.shape
    gda = GDAAdapter(np.zeros((5, D), np.float32), logit_scale=100.0).fit(X, y)
    # sklearn's shrunk estimate (1-g) S/N + g tr(S/N)/D I is proportional to the paper's
    # S/(N-1) + tr(S)/(N-1)^2 I exactly when g = D / (N - 1 + D).
    g = D / (N - 1 + D)
    lda = LinearDiscriminantAnalysis(solver="lsqr", shrinkage=g).fit(X, y)
    np.testing.assert_array_equal(gda.predict_label(Xt), lda.predict(Xt))
    k = (N - 1) ** 2 / (N * (N - 1 + D))  # Sigma_sklearn = k Sigma_paper
    assert_logits_close(
        pairwise_diffs(gda.gda_logits(Xt)),
        D * k / (N - 1) * pairwise_diffs(lda.decision_function(Xt)),
    )


@pytest.mark.parametrize("shrinkage", [0.0, 0.25, 0.8])
def test_float_shrinkage_is_lda_lsqr(shrinkage):
    X, y, Xt, _, _ = gaussian_data(seed=1)
    N, D = X.shape
    gda = GDAAdapter(np.zeros((5, D), np.float32), logit_scale=100.0, shrinkage=shrinkage).fit(X, y)
    lda = LinearDiscriminantAnalysis(solver="lsqr", shrinkage=shrinkage or None).fit(X, y)
    np.testing.assert_array_equal(gda.predict_label(Xt), lda.predict(Xt))
    assert_logits_close(
        pairwise_diffs(gda.gda_logits(Xt)), D / (N - 1) * pairwise_diffs(lda.decision_function(Xt))
    )


def test_head_equals_the_paper_formula_in_float64():
    X, y, _, _, _ = gaussian_data(C=4, D=6, n=30, seed=2)
    N, D = X.shape
    X64 = X.astype(np.float64)
    mu = np.stack([X64[y == c].mean(0) for c in range(4)])
    Z = X64 - mu[y]
    S = Z.T @ Z
    P = D * np.linalg.pinv(S + np.trace(S / (N - 1)) * np.eye(D))
    W = mu @ P
    b = np.log(1 / 4) - 0.5 * np.einsum("cd,de,ce->c", mu, P, mu)
    gda = GDAAdapter(np.zeros((4, D), np.float32), logit_scale=100.0).fit(X, y)
    np.testing.assert_allclose(gda.coef_, W, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(gda.intercept_, b, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(gda.means_, mu, atol=1e-6)


@pytest.mark.parametrize("kind", ["ledoit_wolf", "oas"])
def test_sklearn_covariance_estimators(kind):
    from sklearn.covariance import ledoit_wolf, oas

    X, y, _, _, _ = gaussian_data(C=3, D=10, n=12, seed=3)
    N, D = X.shape
    gda = GDAAdapter(np.zeros((3, D), np.float32), logit_scale=100.0, shrinkage=kind).fit(X, y)
    mu = np.stack([X[y == c].mean(0) for c in range(3)]).astype(np.float64)
    cov, _ = (ledoit_wolf if kind == "ledoit_wolf" else oas)(X - mu[y], assume_centered=True)
    W = D / (N - 1) * np.linalg.solve(cov, mu.T).T
    np.testing.assert_allclose(gda.coef_, W, rtol=1e-3, atol=1e-5)


def test_views_are_samples_and_torch_input_works():
    import torch

    X, y, Xt, _, _ = gaussian_data(C=3, D=6, n=20, seed=4)
    views = X.reshape(3 * 5, 4, 6)  # 15 images x 4 views, labels per image
    y_img = y.reshape(15, 4)[:, 0]
    T = np.random.default_rng(0).normal(size=(3, 6)).astype(np.float32)
    a = GDAAdapter(T, logit_scale=50.0, alpha=0.5).fit(views, y_img)
    b = GDAAdapter(T, logit_scale=50.0, alpha=0.5).fit(torch.from_numpy(X), torch.from_numpy(y))
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-5, atol=1e-6)
    assert a.class_counts_.tolist() == [5, 5, 5] and a.n_samples_ == 60
    expected = (50.0 * Xt @ T.T + 0.5 * a.gda_logits(Xt)) / 50.0
    np.testing.assert_allclose(a.decision_function(Xt), expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(
        a.decision_function(torch.from_numpy(Xt)), a.decision_function(Xt), atol=1e-6
    )


def test_priors_from_counts_shift_the_intercept():
    X, y, _, _, _ = gaussian_data(C=3, D=5, n=30, seed=5)
    keep = np.r_[0:30, 30:40, 60:90]  # class 1 has 10 samples, the others 30
    kw = dict(logit_scale=100.0)
    T = np.zeros((3, 5), np.float32)
    uniform = GDAAdapter(T, **kw).fit(X[keep], y[keep])
    counts = GDAAdapter(T, priors="counts", **kw).fit(X[keep], y[keep])
    np.testing.assert_allclose(counts.priors_, [30 / 70, 10 / 70, 30 / 70], rtol=1e-6)
    np.testing.assert_allclose(
        counts.intercept_ - uniform.intercept_,
        np.log(counts.priors_) - np.log(1 / 3),
        rtol=1e-4,
        atol=1e-5,
    )
    fixed = GDAAdapter(T, priors=[1.0, 2.0, 1.0], **kw).fit(X[keep], y[keep])
    np.testing.assert_allclose(fixed.priors_, [0.25, 0.5, 0.25], rtol=1e-6)


def test_base_to_new_synthesises_means_from_nearest_features():
    X, y, _, _, mu = gaussian_data(C=4, D=6, n=50, seed=6)
    T = (mu / np.linalg.norm(mu, axis=1, keepdims=True)).astype(np.float32)
    base = y != 3
    gda = GDAAdapter(T, logit_scale=100.0, n_neighbors=16).fit(X[base], y[base])
    assert gda.synthesized_.tolist() == [False, False, False, True]
    Xb = X[base]
    nearest = np.argsort(-(Xb @ T[3]), kind="stable")[:16]
    np.testing.assert_allclose(gda.means_[3], Xb[nearest].mean(0), rtol=1e-5, atol=1e-5)
    assert np.isfinite(gda.coef_).all() and gda.class_counts_[3] == 0
    full = GDAAdapter(T, logit_scale=100.0).fit(X[base], y[base])  # k > base size: all of them
    assert np.isfinite(full.means_).all()


def test_parameter_validation_and_not_fitted():
    T = np.zeros((3, 4), np.float32)
    X, y = np.random.default_rng(0).normal(size=(12, 4)), np.repeat(np.arange(3), 4)
    with pytest.raises(
        InvalidParameterError,
        match=r"The 'alpha' parameter of GDAAdapter must be a float >= 0\. Got -1",
    ):
        GDAAdapter(T, logit_scale=1.0, alpha=-1).fit(X, y)
    with pytest.raises(InvalidParameterError, match="'shrinkage' parameter of GDAAdapter"):
        GDAAdapter(T, logit_scale=1.0, shrinkage="pinv").fit(X, y)
    with pytest.raises(InvalidParameterError, match="'shrinkage' parameter.*<= 1"):
        GDAAdapter(T, logit_scale=1.0, shrinkage=1.5).fit(X, y)
    with pytest.raises(InvalidParameterError, match="pass logit_scale"):
        GDAAdapter(T).fit(X, y)
    with pytest.raises(InvalidParameterError, match=r"labels must lie in \[0, 3\)"):
        GDAAdapter(T, logit_scale=1.0).fit(X, y + 1)
    with pytest.raises(InvalidParameterError, match="12 images but y has 3"):
        GDAAdapter(T, logit_scale=1.0).fit(X, y[:3])
    with pytest.raises(NotFittedError, match="call fit"):
        GDAAdapter(T, logit_scale=1.0).decision_function(X)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_features_are_refused(bad):
    T = np.zeros((3, 4), np.float32)
    X, y = np.random.default_rng(0).normal(size=(12, 4)), np.repeat(np.arange(3), 4)
    X[7, 2] = bad
    with pytest.raises(InvalidParameterError, match="NaN or infinite"):
        GDAAdapter(T, logit_scale=1.0).fit(X, y)


@pytest.mark.parametrize("D", [7, 600])  # 600: uneven column halves down to 150 wide
def test_streamed_block_triangular_scatter_equals_float64(D):
    import torch

    rng = np.random.default_rng(D)
    C, N = 9, 1_000
    y = rng.integers(C - 1, size=N)  # the last class has no sample
    X = (rng.normal(size=(C, D))[y] + rng.normal(size=(N, D))).astype(np.float32)
    means, counts, S = class_statistics(
        torch.from_numpy(X), torch.from_numpy(y), C, block_elements=D * 128
    )  # 8 row blocks
    X64 = X.astype(np.float64)
    mu = np.stack([X64[y == c].mean(0) if (y == c).any() else np.zeros(D) for c in range(C)])
    Z = X64 - mu[y]
    np.testing.assert_array_equal(counts.numpy(), np.bincount(y, minlength=C))
    np.testing.assert_allclose(means.numpy(), mu, atol=1e-6)
    np.testing.assert_allclose(S.numpy(), Z.T @ Z, rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(S.numpy(), S.numpy().T)


def test_em_recovers_clusters_from_a_poor_zero_shot_start():
    """Over five mixtures EM always improves on its zero-shot start and is near-perfect on
    average (EM can still merge two clusters on an unlucky draw, so no single-draw bound)."""
    aris = []
    for seed in range(5):
        _, _, Xt, yt, mu = gaussian_data(C=6, D=10, n=5, n_test=150, seed=seed, spread=1.3)
        rng = np.random.default_rng(1)
        T = (mu + rng.normal(size=mu.shape) * 1.5).astype(np.float32)  # noisy "text" weights
        zs_ari = adjusted_rand_score(yt, (Xt @ T.T).argmax(1))
        em = GDAEMAdapter(T, logit_scale=10.0, max_iter=100, tol=1e-6).fit(Xt)
        aris.append(adjusted_rand_score(yt, em.labels_))
        assert aris[-1] > zs_ari + 0.1, (seed, aris[-1], zs_ari)
        assert em.n_iter_ == len(em.deltas_) and em.deltas_[0] > 1e-6
        if em.converged_:
            assert em.deltas_[-1] < 1e-6
    assert np.mean(aris) > 0.9, aris


def test_em_zero_iterations_and_estimated_priors():
    _, _, Xt, yt, mu = gaussian_data(C=3, D=4, n=5, n_test=60, seed=8)
    T = mu.astype(np.float32)
    zero = GDAEMAdapter(T, logit_scale=10.0, max_iter=0).fit(Xt)
    assert zero.n_iter_ == 0 and not zero.converged_ and zero.deltas_ == []
    est = GDAEMAdapter(T, logit_scale=10.0, priors="estimated", max_iter=50).fit(Xt)
    assert adjusted_rand_score(yt, est.labels_) > 0.8
    with pytest.raises(InvalidParameterError, match="'priors' parameter of GDAEMAdapter"):
        GDAEMAdapter(T, logit_scale=10.0, priors="counts").fit(Xt)
    with pytest.raises(InvalidParameterError, match="'max_iter' parameter.*an int >= 0"):
        GDAEMAdapter(T, logit_scale=10.0, max_iter=-2).fit(Xt)


def reference_gda_em(X, T, scale, rounds, ridge=1.0):
    """EM for a shared-covariance Gaussian mixture, float64 numpy, written from the formulas:
    R0 = softmax(scale X T^T); M: N_c, mu_c, S = sum_i sum_c R_ic (x_i - mu_c)(x_i - mu_c)^T,
    Sigma = S / (n - 1) + ridge tr(S / (n - 1)) / (n - 1) I; E: R = softmax(log(1/C)
    + x Sigma^-1 mu^T - 1/2 mu Sigma^-1 mu^T)."""
    X = X.astype(np.float64)
    n, D = X.shape
    C = len(T)

    def softmax(z):
        z = np.exp(z - z.max(1, keepdims=True))
        return z / z.sum(1, keepdims=True)

    R = softmax(scale * X @ T.astype(np.float64).T)
    for step in range(rounds + 1):
        mass = R.sum(0)
        mu = (R.T @ X) / mass[:, None]
        S = sum((R[:, c, None] * (X - mu[c])).T @ (X - mu[c]) for c in range(C))
        sigma = S / (n - 1) + ridge * np.trace(S / (n - 1)) / (n - 1) * np.eye(D)
        W = np.linalg.solve(sigma, mu.T).T  # (C, D)
        b = np.log(1.0 / C) - 0.5 * np.einsum("cd,cd->c", mu, W)
        if step == rounds:
            return mu, W, b, R
        R = softmax(X @ W.T + b)


@pytest.mark.parametrize("rounds", [0, 1, 4])
def test_em_equals_the_formula_in_float64(rounds):
    _, _, Xt, _, mu = gaussian_data(C=4, D=5, n=5, n_test=40, seed=11, spread=1.2)
    T = (mu + np.random.default_rng(3).normal(size=mu.shape)).astype(np.float32)
    em = GDAEMAdapter(T, logit_scale=10.0, max_iter=rounds, tol=0.0).fit(Xt)
    means, W, b, R = reference_gda_em(Xt, T, 10.0, rounds)
    assert em.n_iter_ == rounds
    np.testing.assert_allclose(em.means_, means, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(em.coef_, W, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(em.intercept_, b, rtol=1e-4, atol=1e-4)
    assert (em.labels_ == R.argmax(1)).all()
