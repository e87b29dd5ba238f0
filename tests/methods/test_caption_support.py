"""CaptionSupportAdapter: support captions per class, the cache formula, KL term, shots, search."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from caption_fakes import COLOURS, SHAPES, HashEncoder, toy_captions, write_lines  # noqa: E402

from zsvl.errors import IndexMismatchError, InvalidParameterError  # noqa: E402
from zsvl.index import build_index  # noqa: E402
from zsvl.methods.caption_support import (  # noqa: E402
    CaptionSupportAdapter,
    mentions_class,
    select_support_captions,
)
from zsvl.methods.zeroshot import ZeroShotClassifier  # noqa: E402

CLASSES = [f"{c} {s}" for c in COLOURS[:3] for s in SHAPES[:3]]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory):
    enc = HashEncoder(48)
    root = tmp_path_factory.mktemp("cs")
    index = build_index(
        write_lines(root / "c.txt", toy_captions(3000, seed=5)), enc, root / "ix", tune_queries=50
    )
    rng = np.random.default_rng(0)
    labels = rng.integers(len(CLASSES), size=90)
    texts = [f"a picture of a {CLASSES[y]} on a table" for y in labels]
    X = enc.encode_texts(texts) + 0.3 * rng.standard_normal((90, 48)).astype(np.float32) / 7
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return enc, index, X.astype(np.float32), labels


def _fit(enc, index, **kw):
    return CaptionSupportAdapter(enc, CLASSES, index=index, templates=["a photo of a {}."], **kw)


def test_support_captions_name_their_class(setup) -> None:
    enc, index, _, _ = setup
    weights = enc.encode_texts([f"a photo of a {c}." for c in CLASSES])
    ids, counts = select_support_captions(index, weights, CLASSES, 16, selection="mention")
    assert ids.shape == (len(CLASSES), 16) and (counts > 0).all()
    caps = index.captions(ids)
    for name, row in zip(CLASSES, caps, strict=True):
        assert all(mentions_class(c, name) for c in row)
    near, _ = select_support_captions(index, weights, CLASSES, 16, selection="nearest")
    assert (near >= 0).all()
    assert mentions_class("Two RED stars on a table", "red star")
    assert not mentions_class("a red circle", "red star")
    with pytest.raises(InvalidParameterError, match="selection must be"):
        select_support_captions(index, weights, CLASSES, 4, selection="best")


def test_cache_formula_against_a_loop(setup) -> None:
    enc, index, X, _ = setup
    clf = _fit(enc, index, m=8, alpha=2.0, beta=4.0).fit()
    keys = index.embeddings(clf.support_ids_[clf.support_ids_ >= 0])
    owners = np.repeat(np.arange(len(CLASSES)), (clf.support_ids_ >= 0).sum(1))
    ref = np.zeros((len(X), len(CLASSES)))
    for i, x in enumerate(X):
        for c in range(len(CLASSES)):
            kc = keys[owners == c]
            ref[i, c] = 100 * x @ clf.weights_[c] + 2.0 * np.mean(np.exp(-4.0 * (1 - kc @ x)))
    np.testing.assert_allclose(clf.decision_function(X) * 100, ref, rtol=1e-4, atol=1e-3)
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1, atol=1e-5)


def test_alpha_zero_is_zero_shot(setup) -> None:
    enc, index, X, _ = setup
    zs = ZeroShotClassifier(enc, CLASSES, templates=["a photo of a {}."]).fit()
    clf = _fit(enc, index, alpha=0.0).fit()
    np.testing.assert_allclose(clf.decision_function(X), zs.decision_function(X), atol=1e-6)


def test_kl_term_against_a_loop(setup) -> None:
    """Tip-X's term (SuS-X): -KL between class-probability signatures, its range mapped onto
    the affinities' range; both ranges fixed at fit from the keys (off-diagonal key pairs)."""
    enc, index, X, _ = setup
    clf = _fit(enc, index, m=4, alpha=0.0, gamma=3.0).fit()
    W, K, t = clf.weights_.astype(np.float64), clf.cap_keys_.astype(np.float64), 0.5

    def sig(v):
        z = np.exp((W @ v) / t - ((W @ v) / t).max())
        return z / z.sum()

    def kl(p, q):
        return float(np.sum(p * np.log(p / q)))

    owners = np.repeat(np.arange(len(CLASSES)), (clf.support_ids_ >= 0).sum(1))
    off = [(i, j) for i in range(len(K)) for j in range(len(K)) if i != j]
    kls = [kl(sig(K[i]), sig(K[j])) for i, j in off]
    affs = [K[i] @ K[j] for i, j in off]
    slope = (max(affs) - min(affs)) / (max(kls) - min(kls))
    for x in X[:3]:
        term = np.zeros(len(CLASSES))
        for key, c in zip(K, owners, strict=True):
            scaled = min(affs) + (kl(sig(x), sig(key)) - min(kls)) * slope
            term[c] -= scaled / np.sum(owners == c)
        expect = 100 * x @ W.T + 3.0 * term
        np.testing.assert_allclose(
            clf.decision_function(x[None])[0] * 100, expect, rtol=1e-4, atol=2e-3
        )


def test_the_cache_is_a_tip_adapter_and_the_search_is_exhaustive(setup) -> None:
    from zsvl.methods.caption_support import ALPHAS, BETAS
    from zsvl.methods.tip import TipAdapter

    enc, index, X, y = setup
    clf = _fit(enc, index, m=8).fit(X_val=X[:45], y_val=y[:45])
    assert isinstance(clf.tip_, TipAdapter) and clf.tip_.device_.type == "cpu"
    best, acc = None, -1.0
    for beta in BETAS:  # brute force: every grid point scored on its own
        for alpha in ALPHAS:
            s = _fit(enc, index, m=8, alpha=alpha, beta=beta).fit().decision_function(X[:45])
            a = float((s.argmax(1) == y[:45]).mean())
            if a > acc:
                best, acc = (alpha, beta), a
    assert (clf.alpha_, clf.beta_) == best and clf.val_accuracy_ == pytest.approx(acc)


def test_image_shots_mix_with_delta(setup) -> None:
    enc, index, X, y = setup
    shots, ys, test = X[:30], y[:30], X[30:]
    only_caps = _fit(enc, index, alpha=5.0).fit().decision_function(test)
    mixed1 = _fit(enc, index, alpha=5.0, delta=1.0).fit(shots, ys).decision_function(test)
    np.testing.assert_allclose(mixed1, only_caps, atol=1e-6)
    img0 = _fit(enc, index, alpha=5.0, delta=0.0).fit(shots, ys)
    L = np.eye(len(CLASSES))[ys]
    L = L / np.maximum(L.sum(0), 1)
    ref = 100 * test @ img0.weights_.T + 5.0 * np.exp(-5.5 * (1 - test @ shots.T)) @ L
    np.testing.assert_allclose(img0.decision_function(test) * 100, ref, rtol=1e-4, atol=1e-3)
    with pytest.raises(InvalidParameterError, match="need their labels"):
        _fit(enc, index).fit(shots)


def test_validation_search_never_loses_to_zero_shot_on_val(setup) -> None:
    enc, index, X, y = setup
    clf = _fit(enc, index).fit(X_val=X[:45], y_val=y[:45])
    zs = ZeroShotClassifier(enc, CLASSES, templates=["a photo of a {}."]).fit()
    zs_val = float((zs.decision_function(X[:45]).argmax(1) == y[:45]).mean())
    assert clf.val_accuracy_ >= zs_val
    assert clf.alpha_ in (0.0, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)


def test_errors(setup) -> None:
    enc, index, X, _ = setup
    with pytest.raises(InvalidParameterError, match="needs classes"):
        CaptionSupportAdapter(enc, CLASSES).fit()
    with pytest.raises(InvalidParameterError, match="'m' parameter .* int >= 1"):
        _fit(enc, index, m=0).fit()
    with pytest.raises(InvalidParameterError, match="'beta' parameter .* float > 0"):
        _fit(enc, index, beta=-1.0).fit()
    with pytest.raises(IndexMismatchError, match="caption index was built with"):
        CaptionSupportAdapter(HashEncoder(48, name="x"), CLASSES, index=index).fit()
