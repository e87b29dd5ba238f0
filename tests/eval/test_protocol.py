"""Hyperparameter search: vectorised = naive loops, and the test split never influences it."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from zsvl.errors import InvalidParameterError
from zsvl.eval.protocol import fit_and_evaluate, fold_ids, tune_gda, tune_gda_em, tune_tip
from zsvl.methods.gda import GDAAdapter
from zsvl.methods.grid_search import alpha_counts, tip_grid_counts, tip_reference_grid
from zsvl.methods.tip import TipAdapter


def unit(x):
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def problem(C=5, D=12, shots=4, views=3, n_val=3, n_test=40, seed=0):
    """Shots with views, a few-shot val set, a test set and weak text weights."""
    rng = np.random.default_rng(seed)
    centres = unit(rng.normal(size=(C, D)))

    def draw(labels, k=None):
        shape = (len(labels), D) if k is None else (len(labels), k, D)
        base = centres[labels] if k is None else centres[labels][:, None, :]
        return unit(base + 0.5 * rng.normal(size=shape))

    y = np.repeat(np.arange(C), shots)
    y_val, y_test = np.repeat(np.arange(C), n_val), np.repeat(np.arange(C), n_test)
    text = unit(centres + 0.9 * rng.normal(size=centres.shape))
    return text, draw(y, views), y, (draw(y_val), y_val), (draw(y_test), y_test)


def naive_tip_counts(text, views, y, X, yy, betas, alphas, scale=100.0):
    """The reference double loop, one TipAdapter evaluation per grid point."""
    out = np.zeros((len(betas), len(alphas)), dtype=np.int64)
    for i, b in enumerate(betas):
        for j, a in enumerate(alphas):
            tip = TipAdapter(text, logit_scale=scale, alpha=a, beta=b).fit(views, y)
            out[i, j] = (tip.decision_function(X).argmax(1) == yy).sum()
    return out


def test_alpha_intervals_count_like_argmax_per_alpha():
    import torch

    rng = np.random.default_rng(0)
    z, m = torch.randn(300, 9) * 3, torch.rand(300, 9) * 2
    y = torch.as_tensor(rng.integers(0, 9, 300))
    alphas = torch.tensor([0.0, 0.1, 0.5, 1.0, 2.0, 5.0, 50.0])
    direct = torch.stack([((z + a * m).argmax(1) == y).sum() for a in alphas])
    assert alpha_counts(z.clone(), m, y, alphas).tolist() == direct.tolist()
    # exact zeros in m (exp underflow at large beta): classes tied on the cache term
    m0 = torch.where(torch.rand(300, 9) < 0.6, torch.zeros(()), m)
    direct0 = torch.stack([((z + a * m0).argmax(1) == y).sum() for a in alphas])
    assert alpha_counts(z.clone(), m0, y, alphas).tolist() == direct0.tolist()


def test_tip_grid_counts_equal_the_reference_double_loop():
    text, views, y, (Xv, yv), _ = problem(seed=1)
    betas, alphas = [0.5, 1.0, 3.0, 7.0], [0.1, 0.7, 1.5, 3.0, 10.0]
    tip = TipAdapter(text, logit_scale=100.0).fit(views, y)
    counts = tip_grid_counts(tip, Xv, yv, betas=betas, alphas=alphas)
    assert counts.shape == (4, 5, 1)
    np.testing.assert_array_equal(
        counts[:, :, 0], naive_tip_counts(text, views, y, Xv, yv, betas, alphas)
    )
    small = tip_grid_counts(tip, Xv, yv, betas=betas, alphas=alphas, block_rows=4)
    np.testing.assert_array_equal(small, counts)


def test_tip_x_grid_matches_per_point_evaluation():
    text, views, y, (Xv, yv), _ = problem(seed=2)
    tip = TipAdapter(text, logit_scale=100.0).fit(views, y)
    grid = dict(betas=[1.0, 4.0], alphas=[0.5, 2.0], gammas=[0.0, 0.5, 2.0])
    counts = tip_grid_counts(tip, Xv, yv, **grid)
    for i, b in enumerate(grid["betas"]):
        for j, a in enumerate(grid["alphas"]):
            for k, g in enumerate(grid["gammas"]):
                one = TipAdapter(text, logit_scale=100.0, alpha=a, beta=b, gamma=g)
                hits = (one.fit(views, y).predict_label(Xv) == yv).sum()
                assert counts[i, j, k] == hits, (b, a, g)


def test_reference_grid_is_tip_adapters():
    grid = tip_reference_grid()
    assert len(grid["beta"]) == 200 and len(grid["alpha"]) == 20
    assert grid["beta"][0] == pytest.approx(0.1) and grid["alpha"][0] == pytest.approx(0.1)
    assert grid["beta"][1] == pytest.approx(0.1 + 6.9 / 200)
    assert grid["alpha"][-1] == pytest.approx(19 * 2.9 / 20 + 0.1)


def test_tune_tip_picks_the_first_best_point_of_the_naive_loop():
    text, views, y, val, _ = problem(seed=3)
    betas, alphas = np.array([0.5, 2.0, 5.0]), np.array([0.2, 1.0, 4.0])
    tip, result = tune_tip(text, views, y, val=val, betas=betas, alphas=alphas, logit_scale=100.0)
    naive = naive_tip_counts(text, views, y, *val, betas, alphas)
    i, j = np.unravel_index(np.argmax(naive), naive.shape)
    assert result.best["beta"] == betas[i] and result.best["alpha"] == alphas[j]
    assert result.mode == "fewshot-val" and result.n_search == len(val[1])
    assert result.score == pytest.approx(100.0 * naive.max() / len(val[1]))
    assert (tip.beta, tip.alpha) == (betas[i], alphas[j])


def test_tune_gda_alpha_matches_direct_accuracy():
    text, views, y, (Xv, yv), _ = problem(seed=4)
    alphas = (1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0)
    gda, result = tune_gda(text, views, y, val=(Xv, yv), alphas=alphas, logit_scale=100.0)
    direct = [
        (GDAAdapter(text, logit_scale=100.0, alpha=a).fit(views, y).predict_label(Xv) == yv).sum()
        for a in alphas
    ]
    assert result.best["alpha"] == alphas[int(np.argmax(direct))]
    np.testing.assert_allclose(result.scores[0], 100.0 * np.array(direct) / len(yv))
    assert gda.alpha == result.best["alpha"]


@pytest.mark.parametrize("method", ["tip", "gda", "gda-em"])
def test_poisoned_test_split_does_not_change_the_chosen_hyperparameters(method):
    text, views, y, val, (Xt, yt) = problem(seed=5)
    rng = np.random.default_rng(0)
    kw = dict(logit_scale=100.0, val=val)
    if method == "tip":
        kw.update(betas=[0.5, 1.0, 3.0, 6.0], alphas=[0.1, 0.5, 1.0, 2.0, 3.0])
    clean = fit_and_evaluate(method, text, views, y, test=(Xt, yt), **kw)
    wrong_labels = (yt + rng.integers(1, 5, len(yt))) % 5  # every test label is wrong
    poisoned = fit_and_evaluate(method, text, views, y, test=(Xt, wrong_labels), **kw)
    assert poisoned["params"] == clean["params"]
    assert poisoned["search_top1"] == clean["search_top1"]
    assert poisoned["top1"] < clean["top1"]  # the poison did reach the test evaluation
    if method != "gda-em":  # gda-em is transductive: it fits on the (unlabelled) test features
        noisy = unit(rng.normal(size=Xt.shape))
        assert (
            fit_and_evaluate(method, text, views, y, test=(noisy, yt), **kw)["params"]
            == clean["params"]
        )


def test_reference_test_mode_does_search_on_test_and_warns(caplog):
    text, views, y, _, (Xt, yt) = problem(seed=6)
    grid = dict(betas=[0.5, 2.0, 6.0], alphas=[0.1, 1.0, 3.0], logit_scale=100.0)
    with caplog.at_level(logging.WARNING, logger="zsvl.eval.protocol"):
        _, clean = tune_tip(text, views, y, mode="reference-test", search_set=(Xt, yt), **grid)
    assert "Reproduction mode 'reference-test'" in caplog.text and clean.mode == "reference-test"
    shuffled = np.random.default_rng(0).permutation(yt)
    _, poisoned = tune_tip(text, views, y, mode="reference-test", search_set=(Xt, shuffled), **grid)
    assert not np.array_equal(clean.scores, poisoned.scores)  # here the test labels matter


def test_mode_errors():
    text, views, y, val, test = problem(seed=7)
    with pytest.raises(InvalidParameterError, match="only for the reproduction modes"):
        tune_tip(text, views, y, val=val, search_set=test, logit_scale=100.0)
    with pytest.raises(InvalidParameterError, match="needs search_set"):
        tune_gda(text, views, y, mode="reference-full-val", logit_scale=100.0)
    with pytest.raises(InvalidParameterError, match="needs val"):
        tune_gda(text, views, y, mode="fewshot-val", logit_scale=100.0)
    with pytest.raises(InvalidParameterError, match="mode must be one of"):
        tune_gda(text, views, y, mode="test", logit_scale=100.0)
    with pytest.raises(InvalidParameterError, match="method must be"):
        fit_and_evaluate("knn", text, views, y, test=test, logit_scale=100.0)


def test_cross_validation_on_the_shots_without_a_val_split():
    text, views, y, _, (Xt, yt) = problem(shots=8, seed=8)
    tip, result = tune_tip(
        text, views, y, betas=[1.0, 5.0], alphas=[0.5, 2.0], logit_scale=100.0, n_folds=4
    )
    assert result.mode == "cv" and result.n_search == len(y)  # every shot held out once
    assert tip.keys_.shape[0] == len(y)  # refitted on all shots
    gda, gres = tune_gda(text, views, y, logit_scale=100.0)
    assert gres.mode == "cv" and gda.n_samples_ == views.shape[0] * views.shape[1]
    one = np.r_[0:40:8]  # one shot per class: CV still runs, with a note
    _, res1 = tune_tip(text, views[one], y[one], betas=[1.0], alphas=[1.0], logit_scale=100.0)
    assert res1.notes and res1.n_search == 5


def test_fold_ids_are_stratified_and_balanced():
    y = np.repeat(np.arange(7), [4, 4, 4, 1, 1, 2, 3])
    folds = fold_ids(y, 4, seed=0)
    for c in range(7):  # a class's images land in distinct folds
        assert len(set(folds[y == c])) == (y == c).sum()
    assert np.bincount(folds, minlength=4).max() - np.bincount(folds, minlength=4).min() <= 3
    np.testing.assert_array_equal(folds, fold_ids(y, 4, seed=0))


def test_gda_em_without_labels_is_fixed_and_with_val_searches():
    text, _, _, val, (Xt, _) = problem(seed=9)
    em, result = tune_gda_em(text, Xt, logit_scale=100.0)
    assert result.mode == "fixed" and result.best == {"alpha": 1.0, "max_iter": 10.0}
    em2, result2 = tune_gda_em(
        text, Xt, val=val, alphas=(0.3, 1.0), max_iters=(0, 3), logit_scale=100.0
    )
    assert result2.mode == "fewshot-val" and result2.scores.shape == (2, 2)
    assert em2.max_iter == result2.best["max_iter"]


def test_tuners_clone_one_estimator_keeping_its_parameters_and_collaborators():
    """The adapters a search fits are clones of one estimator: every parameter the caller gave
    survives, the searched ones are set, and the zero-shot head is shared, not copied."""

    class Head:  # a fitted zero-shot head: weights_, classes_, logit_scale_
        def __init__(self, weights):
            self.weights_, self.logit_scale_ = weights, 100.0
            self.classes_ = np.array([f"c{i}" for i in range(len(weights))], dtype=object)

    text, views, y, val, _ = problem(seed=6)
    head = Head(text)
    tip, result = tune_tip(
        head,
        views,
        y,
        val=val,
        betas=[0.5, 3.0],
        alphas=[0.3, 2.0],
        kl_temperature=0.3,
        batch_size=7,
    )
    assert tip.zero_shot is head and (tip.kl_temperature, tip.batch_size) == (0.3, 7)
    assert (tip.beta, tip.alpha) == (result.best["beta"], result.best["alpha"])
    assert list(tip.classes_) == list(head.classes_)
    gda, result = tune_gda(head, views, y, mode="cv", alphas=(0.1, 1.0), n_neighbors=5)
    assert gda.zero_shot is head and gda.n_neighbors == 5 and gda.alpha == result.best["alpha"]
