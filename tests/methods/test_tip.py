"""TipAdapter (and the Tip-X term) against direct computations and 1-nearest-neighbour."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier

from zsvl.errors import InvalidParameterError, NotFittedError
from zsvl.methods.tip import KeyLayout, TipAdapter


def unit(x):
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def clustered(C=6, D=16, per_class=8, n_query=50, noise=0.35, seed=0):
    """Unit vectors scattered around C random class directions."""
    rng = np.random.default_rng(seed)
    centres = unit(rng.normal(size=(C, D)))
    y = np.repeat(np.arange(C), per_class)
    yq = rng.integers(0, C, n_query)
    keys = unit(centres[y] + noise * rng.normal(size=(len(y), D)) / np.sqrt(D) * 4)
    queries = unit(centres[yq] + noise * rng.normal(size=(n_query, D)) / np.sqrt(D) * 4)
    return keys, y, queries, yq, centres


def direct_logits(X, keys, labels, T, scale, alpha, beta):
    L = np.eye(T.shape[0])[labels]
    return scale * X @ T.T + alpha * np.exp(-beta * (1 - X @ keys.T)) @ L


def test_large_beta_and_alpha_reduce_to_one_nearest_neighbour():
    """Random keys with random labels (so 1-NN is far from a nearest-mean rule)."""
    rng = np.random.default_rng(1)
    keys, y = unit(rng.normal(size=(60, 4))), rng.integers(0, 5, 60)
    queries = unit(rng.normal(size=(200, 4)))
    text = unit(rng.normal(size=(5, 4)))
    beta = 300.0
    tip = TipAdapter(text, logit_scale=100.0, alpha=1e30, beta=beta).fit(keys, y)
    knn = KNeighborsClassifier(n_neighbors=1).fit(keys, y)
    A = queries @ keys.T
    best = A.max(1)
    other = np.where(y[None, :] != y[A.argmax(1)][:, None], A, -np.inf).max(1)
    # Where the nearest key beats every key of another class by more than log(n_keys) / beta
    # (and alpha * exp(-beta (1 - best)) dwarfs the zero-shot logits) the nearest key decides.
    decided = (beta * (best - other) > np.log(len(y)) + 1) & (beta * (1 - best) < 50)
    assert decided.mean() > 0.7
    ours, nn = tip.predict_label(queries), knn.predict(queries)
    np.testing.assert_array_equal(ours[decided], nn[decided])
    assert (ours == nn).mean() > 0.9


def test_logits_match_the_formula_with_view_averaging():
    keys, y, queries, _, centres = clustered(seed=2)
    rng = np.random.default_rng(0)
    views = unit(keys[:, None, :] + 0.1 * rng.normal(size=(len(keys), 5, keys.shape[1])))
    tip = TipAdapter(centres, logit_scale=50.0, alpha=2.5, beta=5.5).fit(views, y)
    K = unit(views.mean(1))
    expected = direct_logits(queries, K, y, centres, 50.0, 2.5, 5.5)
    np.testing.assert_allclose(
        tip.decision_function(queries), expected / 50.0, rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(tip.predict_proba(queries).sum(1), 1.0, rtol=1e-5)


def test_unequal_class_counts_and_names_as_labels():
    keys, y, queries, _, centres = clustered(seed=3)
    keep = np.r_[0:3, 8:16, 16:17, 24:48]  # 3, 8, 1, 0, 8, 8 keys: the index_add path
    names = [f"c{i}" for i in range(6)]
    tip = TipAdapter(centres, classes=names, logit_scale=100.0, alpha=1.0, beta=3.0)
    tip.fit(keys[keep], np.array(names, dtype=object)[y[keep]])
    assert tip.layout_.per_class == 0
    expected = direct_logits(queries, keys[keep], y[keep], centres, 100.0, 1.0, 3.0)
    np.testing.assert_allclose(
        tip.decision_function(queries) * 100.0, expected, rtol=1e-4, atol=1e-3
    )
    assert set(tip.predict(queries)) <= set(names)


@pytest.mark.parametrize("counts", [[4, 4, 4], [1, 5, 2]])
def test_key_layout_segment_sum_is_the_one_hot_product(counts):
    import torch

    labels = np.random.default_rng(0).permutation(np.repeat(np.arange(3), counts))
    layout = KeyLayout(labels, 3)
    E = torch.rand(7, len(labels))
    onehot = torch.as_tensor(np.eye(3, dtype=np.float32)[layout.labels])
    torch.testing.assert_close(layout.segment_sum(E), E @ onehot)
    assert sorted(layout.order.tolist()) == list(range(len(labels)))


def test_tip_x_term_is_the_rescaled_kl_product():
    keys, y, queries, _, centres = clustered(C=4, per_class=3, n_query=7, seed=4)
    t = 0.5
    tip = TipAdapter(
        centres, logit_scale=100.0, alpha=1.0, beta=2.0, gamma=0.7, kl_temperature=t
    ).fit(keys, y)

    def signatures(X):
        z = X @ centres.T / t
        z -= z.max(1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(1, keepdims=True)

    p, q = signatures(queries.astype(np.float64)), signatures(keys.astype(np.float64))
    kl = np.array([[np.sum(pi * (np.log(pi) - np.log(qj))) for qj in q] for pi in p])
    kk = np.array([[np.sum(qi * (np.log(qi) - np.log(qj))) for qj in q] for qi in q])
    aff = keys @ keys.T
    off = ~np.eye(len(keys), dtype=bool)
    lo, hi, alo, ahi = kk[off].min(), kk[off].max(), aff[off].min(), aff[off].max()
    scaled = (kl - lo) / (hi - lo) * (ahi - alo) + alo
    expected_kl = -scaled @ np.eye(4)[y]
    np.testing.assert_allclose(tip.kl_logits(queries), expected_kl, rtol=1e-3, atol=1e-4)
    base = direct_logits(queries, keys, y, centres, 100.0, 1.0, 2.0)
    np.testing.assert_allclose(
        tip.decision_function(queries) * 100.0, base + 0.7 * expected_kl, rtol=1e-4, atol=1e-3
    )
    # per-image predictions: scoring a query alone or in a batch gives the same logits
    np.testing.assert_allclose(
        tip.decision_function(queries[:1]), tip.decision_function(queries)[:1], rtol=1e-5, atol=1e-6
    )


class TextEncoder:
    """A minimal Encoder for ZeroShotClassifier: texts -> hash-seeded unit vectors."""

    embed_dim, logit_scale, fingerprint, device = 16, 30.0, "hash-text", "cpu"

    def encode_texts(self, texts, *, batch_size=256):
        out = []
        for text in texts:
            seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")
            out.append(np.random.default_rng(seed).normal(size=self.embed_dim))
        return unit(np.array(out))

    def encode_images(self, images, *, batch_size=64, on_error="raise"):
        raise NotImplementedError


def test_fitted_zero_shot_classifier_is_injected():
    from zsvl.methods.zeroshot import ZeroShotClassifier

    zs = ZeroShotClassifier(TextEncoder(), ["cat", "dog", "owl"], templates=["a {}."])
    with pytest.raises(NotFittedError, match="not fitted; call .fit"):
        TipAdapter(zs).fit(np.zeros((3, 16), np.float32), [0, 1, 2])
    zs.fit()
    keys, y, queries, _, _ = clustered(C=3, D=16, seed=5)
    tip = TipAdapter(zs, alpha=0.0).fit(keys, y)
    assert tip.logit_scale_ == 30.0 and list(tip.classes_) == ["cat", "dog", "owl"]
    np.testing.assert_allclose(
        tip.decision_function(queries), zs.decision_function(queries), atol=1e-5
    )


def test_parameter_errors():
    keys, y, _, _, centres = clustered()
    with pytest.raises(
        InvalidParameterError,
        match=r"^The 'beta' parameter of TipAdapter must be a float > 0\. "
        r"Got -1\.0\.$",
    ):
        TipAdapter(centres, logit_scale=100.0, beta=-1.0).fit(keys, y)
    with pytest.raises(InvalidParameterError, match="'gamma' parameter of TipAdapter"):
        TipAdapter(centres, logit_scale=100.0, gamma="big").fit(keys, y)
    with pytest.raises(InvalidParameterError, match="has dimension 5"):
        TipAdapter(centres, logit_scale=100.0).fit(keys[:, :5], y)
    with pytest.raises(NotFittedError):
        TipAdapter(centres, logit_scale=100.0).decision_function(keys)


def test_tip_x_adapter_is_tip_with_gamma_one():
    from zsvl.methods.tip import TipXAdapter

    keys, y, queries, _, centres = clustered(C=4, per_class=3, n_query=5, seed=6)
    x = TipXAdapter(centres, logit_scale=100.0).fit(keys, y)
    t = TipAdapter(centres, logit_scale=100.0, gamma=1.0).fit(keys, y)
    assert x.gamma == 1.0
    np.testing.assert_allclose(x.decision_function(queries), t.decision_function(queries))


def test_keys_average_raw_views_like_the_reference_when_norms_are_known():
    """Tip-Adapter's build_cache_model averages the raw view features, then normalises."""
    from types import SimpleNamespace

    from zsvl.eval.protocol import tune_tip

    rng = np.random.default_rng(7)
    C, D, V = 4, 12, 5
    y = np.repeat(np.arange(C), 3)
    raw = rng.normal(size=(len(y), V, D)) * rng.uniform(0.5, 3.0, size=(len(y), V, 1))
    reference = raw.mean(1) / np.linalg.norm(raw.mean(1), axis=1, keepdims=True)
    norms = np.linalg.norm(raw, axis=2)
    views = (raw / norms[:, :, None]).astype(np.float32)
    text = unit(rng.normal(size=(C, D)))
    with_norms = TipAdapter(text, logit_scale=100.0).fit(views, y, view_norms=norms)
    order = np.argsort(with_norms.layout_.order)  # back to input order
    np.testing.assert_allclose(with_norms.keys_[order], reference, atol=1e-6)
    from_raw = TipAdapter(text, logit_scale=100.0).fit(raw.astype(np.float32), y)
    np.testing.assert_allclose(from_raw.keys_, with_norms.keys_, atol=1e-6)
    shots = SimpleNamespace(views=views, view_norms=norms, plain=None)
    from_shots = TipAdapter(text, logit_scale=100.0).fit(shots, y)
    np.testing.assert_allclose(from_shots.keys_, with_norms.keys_, atol=1e-6)
    plain = TipAdapter(text, logit_scale=100.0).fit(views, y)  # normalised views: differs
    assert np.abs(plain.keys_ - with_norms.keys_).max() > 1e-3
    tuned, _ = tune_tip(
        text, shots, y, val=(views[:, 0], y), betas=[1.0], alphas=[1.0], logit_scale=100.0
    )
    np.testing.assert_allclose(tuned.keys_, with_norms.keys_, atol=1e-6)
    with pytest.raises(InvalidParameterError, match="view_norms must have shape"):
        TipAdapter(text, logit_scale=100.0).fit(views, y, view_norms=norms[:, :2])


def test_sample_weights_scale_each_keys_value():
    keys, y, queries, _, centres = clustered(C=3, per_class=4, seed=9)
    w = np.random.default_rng(2).uniform(0.1, 2.0, len(y))
    tip = TipAdapter(centres, logit_scale=50.0, alpha=1.5, beta=3.0).fit(keys, y, sample_weight=w)
    L = np.eye(3)[y] * w[:, None]
    expect = 50.0 * queries @ centres.T + 1.5 * np.exp(-3.0 * (1 - queries @ keys.T)) @ L
    np.testing.assert_allclose(tip.decision_function(queries) * 50.0, expect, rtol=1e-5, atol=1e-4)
    with pytest.raises(InvalidParameterError, match="sample_weight of TipAdapter"):
        TipAdapter(centres, logit_scale=50.0).fit(keys, y, sample_weight=-w)
