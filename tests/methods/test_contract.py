"""Every classifier in zsvl.methods honours the scikit-learn estimator contract.

scikit-learn's own checks run where they apply (those that fit on random numeric data do not:
zsvl estimators need an encoder and embeddings of its dimension); our own checks cover the rest:
fit returns self, classes_ is an array, predict == classes_[argmax decision_function],
probabilities sum to 1, score is the accuracy, decision_function changes no state, clone
round-trips (same parameters, collaborators shared, unfitted) and refits to the same scores.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, clone, is_classifier
from sklearn.utils import estimator_checks as checks

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from caption_fakes import HashEncoder, toy_captions, write_lines  # noqa: E402
from llm_server import MODEL, ToyLLMServer  # noqa: E402
from text_fakes import BagOfWordsEncoder  # noqa: E402

from zsvl.errors import NotFittedError  # noqa: E402
from zsvl.toy.world import class_attributes  # noqa: E402

FINE = list(class_attributes("ToyFine"))[:8]
SHAPES = ["red star", "blue circle", "green hexagon", "purple arrow"]
SKLEARN_CHECKS = [
    checks.check_no_attributes_set_in_init,
    checks.check_get_params_invariance,
    checks.check_set_params,
    checks.check_estimator_repr,
    checks.check_estimator_cloneable,
]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Stand-in encoders, a caption index, an LLM server and labelled embeddings."""
    root = tmp_path_factory.mktemp("contract")
    bow = BagOfWordsEncoder(48)
    hashed = HashEncoder(48)
    from zsvl.index import build_index

    index = build_index(
        write_lines(root / "c.txt", toy_captions(1500, seed=2)),
        hashed,
        root / "ix",
        tune_queries=30,
    )
    y = np.tile(np.arange(len(FINE)), 4)
    X = bow.images_of([FINE[c] for c in y], noise=3.0, seed=1)
    yc = np.tile(np.arange(len(SHAPES)), 3)
    Xc = hashed.encode_texts([f"a picture of a {SHAPES[c]}" for c in yc])
    with ToyLLMServer() as server:
        yield dict(
            root=root, bow=bow, hashed=hashed, index=index, X=X, y=y, Xc=Xc, yc=yc, server=server
        )


def _zero_shot(w):
    from zsvl.methods.zeroshot import ZeroShotClassifier

    return ZeroShotClassifier(w["bow"], FINE, templates=["a photo of a {}."])


def _descriptor_set():
    from zsvl.text.descriptors import DescriptorSet

    return DescriptorSet(FINE, tuple((f"{n} pattern", f"{n.split()[-1]} outline") for n in FINE))


def make_zeroshot(w):
    return _zero_shot(w), (), (w["X"], w["y"])


def make_descriptors(w):
    from zsvl.methods.descriptors import DescriptorClassifier

    return (
        DescriptorClassifier(w["bow"], _descriptor_set(), aggregation="max"),
        (),
        (w["X"], w["y"]),
    )


def make_waffle(w):
    from zsvl.methods.waffle import WaffleCLIPClassifier

    return WaffleCLIPClassifier(w["bow"], FINE, seeds=(0, 1)), (), (w["X"], w["y"])


def make_fudd(w):
    from zsvl.methods.fudd import FuDDClassifier
    from zsvl.text.llm import LLMConfig, OpenAIChatClient
    from zsvl.text.llm_cache import LLMCache

    config = LLMConfig(model=MODEL, base_url=w["server"].base_url)
    llm = OpenAIChatClient(config, cache=LLMCache(w["root"] / "llm"))
    return FuDDClassifier(w["bow"], FINE, llm=llm, k=3), (w["X"],), (w["X"], w["y"])


def make_tip(w):
    from zsvl.methods.tip import TipAdapter

    return TipAdapter(_zero_shot(w).fit(), alpha=2.0, beta=3.0), (w["X"], w["y"]), (w["X"], w["y"])


def make_tipx(w):
    from zsvl.methods.tip import TipXAdapter

    return TipXAdapter(_zero_shot(w).fit(), gamma=0.5), (w["X"], w["y"]), (w["X"], w["y"])


def make_gda(w):
    from zsvl.methods.gda import GDAAdapter

    return GDAAdapter(_zero_shot(w).fit(), alpha=0.1), (w["X"], w["y"]), (w["X"], w["y"])


def make_gda_em(w):
    from zsvl.methods.gda_em import GDAEMAdapter

    return GDAEMAdapter(_zero_shot(w).fit(), max_iter=3), (w["X"],), (w["X"], w["y"])


def make_caption_support(w):
    from zsvl.methods.caption_support import CaptionSupportAdapter

    est = CaptionSupportAdapter(
        w["hashed"], SHAPES, index=w["index"], m=4, templates=["a photo of a {}."]
    )
    return est, (), (w["Xc"], w["yc"])


def make_vocab_free(w):
    from zsvl.methods.vocab_free import VocabularyFreeClassifier

    est = VocabularyFreeClassifier(w["hashed"], w["index"], k=5)
    return est, (w["Xc"],), (w["Xc"], None)


MAKERS = [
    make_zeroshot,
    make_descriptors,
    make_waffle,
    make_fudd,
    make_tip,
    make_tipx,
    make_gda,
    make_gda_em,
    make_caption_support,
    make_vocab_free,
]


def _ids(maker):
    return maker.__name__.removeprefix("make_")


@pytest.mark.parametrize("maker", MAKERS, ids=_ids)
def test_sklearn_checks_that_apply(world, maker):
    est, _, _ = maker(world)
    if hasattr(est, "llm"):  # check_set_params deep-copies parameters; an LLM client holds
        est.set_params(llm=None)  # a lock (zsvl's clone shares it instead)
    assert isinstance(est, BaseEstimator) and isinstance(est, ClassifierMixin)
    assert is_classifier(est)
    for check in SKLEARN_CHECKS:
        check(type(est).__name__, est)


@pytest.mark.parametrize("maker", MAKERS, ids=_ids)
def test_estimator_contract(world, maker):
    est, fit_args, (X, y) = maker(world)
    with pytest.raises(NotFittedError):
        est.decision_function(X)
    assert est.fit(*fit_args) is est
    classes = est.classes_
    assert isinstance(classes, np.ndarray) and classes.ndim == 1 and len(classes)
    state = dict(est.__dict__)
    scores = est.decision_function(X)
    assert est.__dict__.keys() == state.keys()  # scoring changes no fitted state
    assert all(est.__dict__[k] is v for k, v in state.items())
    assert scores.shape == (len(X), len(classes))
    pred = est.predict(X)
    assert list(pred) == list(classes[scores.argmax(1)])
    proba = est.predict_proba(X)
    assert proba.shape == scores.shape and (proba >= 0).all()
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-5)
    truth = pred if y is None else classes[np.asarray(y)]
    assert est.score(X, truth) == pytest.approx(float(np.mean(pred == truth)))
    if y is not None:
        assert est.score(X, y) == est.score(X, truth)  # positions or names alike
    params = est.get_params(deep=False)
    twin = clone(est)
    assert type(twin) is type(est) and "classset_" not in twin.__dict__
    for name, value in twin.get_params(deep=False).items():
        if isinstance(value, int | float | str | bool | tuple | type(None)):
            assert value == params[name], name
        elif not isinstance(value, list | dict | np.ndarray):
            assert value is params[name], name  # encoders, indexes, heads: shared
    np.testing.assert_allclose(twin.fit(*fit_args).decision_function(X), scores, atol=1e-5)
    est.set_params(**params)
    assert est.get_params(deep=False) == params
