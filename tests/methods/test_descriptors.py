"""DescriptorClassifier against per-class reference loops; explanations; fallbacks."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from text_fakes import BagOfWordsEncoder  # noqa: E402

from zsvl.errors import InvalidParameterError, NotFittedError  # noqa: E402
from zsvl.methods.descriptors import DescriptorClassifier, segment_max_scores  # noqa: E402
from zsvl.text.descriptors import DescriptorSet  # noqa: E402

CLASSES = ["red circle", "blue square", "green star", "orange ring"]
DESCRIPTORS = [
    ["round", "red in colour", "no corners"],
    ["four equal sides", "blue in colour"],
    ["five sharp points", "green in colour", "a spiky outline", "narrow arms"],
    ["a hole in the middle"],
]


@pytest.fixture
def enc():
    return BagOfWordsEncoder(32)


@pytest.fixture
def ds():
    return DescriptorSet.from_lists(CLASSES, DESCRIPTORS, provenance={"style": "cbd"})


def _images(enc, n=40):
    names = [CLASSES[i % 4] for i in range(n)]
    return enc.images_of(names, noise=2.0, seed=1), np.arange(n) % 4


def _reference(enc, X, aggregation, template="{c}, {which} {d}."):
    from zsvl.text.sentences import descriptor_sentence

    cols = []
    for name, items in zip(CLASSES, DESCRIPTORS, strict=True):  # the reference: loop over classes
        T = enc.encode_texts([descriptor_sentence(name, d, template=template) for d in items])
        if aggregation == "mean_sims":
            cols.append((X @ T.T).mean(1))
        elif aggregation == "mean_emb":
            m = T.mean(0)
            cols.append(X @ (m / np.linalg.norm(m)))
        else:
            cols.append((X @ T.T).max(1))
    return np.stack(cols, 1)


@pytest.mark.parametrize("aggregation", ["mean_sims", "mean_emb", "max"])
def test_scores_match_the_per_class_loop(enc, ds, aggregation):
    X, _ = _images(enc)
    clf = DescriptorClassifier(enc, ds, aggregation=aggregation).fit()
    np.testing.assert_allclose(clf.decision_function(X), _reference(enc, X, aggregation), atol=1e-5)
    assert clf.texts_[0] == "red circle, which has round."
    assert len(clf.texts_) == sum(map(len, DESCRIPTORS))
    if aggregation == "mean_sims":  # the CBD mean is NOT renormalised
        assert np.linalg.norm(clf.weights_[:3], axis=1).max() < 0.99  # class 3 has one text


def test_segment_max_in_chunks_equals_dense(enc):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 8)).astype(np.float32)
    E = rng.normal(size=(11, 8)).astype(np.float32)
    owners = np.array([0, 0, 1, 2, 2, 2, 3, 3, 4, 4, 4])
    dense = np.stack([(X @ E[owners == c].T).max(1) for c in range(5)], 1)
    np.testing.assert_allclose(segment_max_scores(X, E, owners, 5, chunk=7), dense, atol=1e-5)


def test_probabilities_use_the_model_logit_scale(enc, ds):
    X, _ = _images(enc, 8)
    clf = DescriptorClassifier(enc, ds).fit()
    z = 50.0 * clf.decision_function(X)
    p = np.exp(z - z.max(1, keepdims=True))
    np.testing.assert_allclose(clf.predict_proba(X), p / p.sum(1, keepdims=True), rtol=1e-4)


def test_class_order_comes_from_the_class_list(enc, ds):
    X, _ = _images(enc, 12)
    base = DescriptorClassifier(enc, ds).fit()
    order = [2, 0, 3, 1]
    swapped = DescriptorClassifier(enc, ds, [CLASSES[i] for i in order]).fit()
    np.testing.assert_allclose(
        swapped.decision_function(X), base.decision_function(X)[:, order], atol=1e-6
    )
    assert list(swapped.predict(X)) == list(base.predict(X))


@pytest.mark.parametrize("aggregation", ["mean_sims", "mean_emb"])
def test_explanations_add_up_to_the_score(enc, ds, aggregation):
    X, _ = _images(enc, 10)
    clf = DescriptorClassifier(enc, ds, aggregation=aggregation).fit()
    scores = clf.decision_function(X)
    for e in clf.explain(X, top=10):
        assert e.label == scores[e.index].argmax()
        assert e.classname == CLASSES[e.label]
        assert sum(ev.contribution for ev in e.evidence) == pytest.approx(e.score, abs=1e-5)
        contributions = [ev.contribution for ev in e.evidence]
        assert contributions == sorted(contributions, reverse=True)
        assert {ev.descriptor for ev in e.evidence} == set(DESCRIPTORS[e.label])


def test_explain_max_and_chosen_labels(enc, ds):
    X, _ = _images(enc, 6)
    clf = DescriptorClassifier(enc, ds, aggregation="max").fit()
    labels = np.array([2] * 6)
    for e in clf.explain(X, top=2, labels=labels):
        assert e.label == 2 and len(e.evidence) == 2
        assert e.evidence[0].similarity == pytest.approx(e.score, abs=1e-5)
        assert e.evidence[1].contribution == 0.0


def test_empty_classes_fall_back_to_the_class_name(enc, caplog):
    ds = DescriptorSet.from_lists(CLASSES, [DESCRIPTORS[0], [], DESCRIPTORS[2], []])
    clf = DescriptorClassifier(enc, ds).fit()
    assert clf.fallback_classes_ == ["blue square", "orange ring"]
    assert "a photo of a blue square." in clf.texts_
    assert "2 classes have no descriptors" in caplog.text
    assert np.isfinite(clf.decision_function(_images(enc, 4)[0])).all()


def test_cupl_sentences_are_used_whole_and_concept_prefix(enc):
    ds = DescriptorSet.from_lists(
        CLASSES[:2], [["A red circle is round."], ["A blue square."]], provenance={"style": "cupl"}
    )
    assert DescriptorClassifier(enc, ds).fit().texts_ == [
        "A red circle is round.",
        "A blue square.",
    ]
    clf = DescriptorClassifier(enc, ds, template="{c}: {d}", concept="shape").fit()
    assert clf.texts_[0] == "A photo of a shape: red circle: a red circle is round"


def test_errors(enc, ds):
    with pytest.raises(NotFittedError):
        DescriptorClassifier(enc, ds).decision_function(np.zeros((1, 32)))
    with pytest.raises(InvalidParameterError, match="aggregation must be one of"):
        DescriptorClassifier(enc, ds, aggregation="median").fit()
    with pytest.raises(InvalidParameterError, match="no entry for"):
        DescriptorClassifier(enc, ds, ["purple cross"]).fit()
    clf = DescriptorClassifier(enc, ds).fit()
    with pytest.raises(InvalidParameterError, match="dimension 5"):
        clf.decision_function(np.zeros((2, 5), np.float32))
