"""ZeroShotClassifier: weights, scores, probabilities against direct computation."""

from __future__ import annotations

import numpy as np
import pytest

from zsvl.errors import InvalidParameterError, NotFittedError
from zsvl.methods.zeroshot import ZeroShotClassifier

CLASSES = ["red circle", "blue square", "green triangle"]
TEMPLATES = ["a photo of a {}.", "a drawing of a {c}.", "{} on a grey background"]


def test_weights_are_normalised_template_means(toy_encoder):
    clf = ZeroShotClassifier(toy_encoder, CLASSES, templates=TEMPLATES).fit()
    for c, name in enumerate(CLASSES):
        texts = [t.replace("{c}", name).replace("{}", name) for t in TEMPLATES]
        mean = toy_encoder.encode_texts(texts).mean(axis=0)
        np.testing.assert_allclose(clf.weights_[c], mean / np.linalg.norm(mean), atol=1e-6)
    assert clf.templates_ == tuple(TEMPLATES) and list(clf.classes_) == CLASSES


def test_scores_probabilities_topk(toy_encoder):
    clf = ZeroShotClassifier(toy_encoder, CLASSES, templates="single").fit()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(10, clf.weights_.shape[1])).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    scores = clf.decision_function(X)
    np.testing.assert_allclose(scores, X @ clf.weights_.T, atol=1e-5)
    proba = clf.predict_proba(X)
    logits = toy_encoder.logit_scale * scores
    expected = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(proba, expected / expected.sum(1, keepdims=True), rtol=1e-4)
    assert list(clf.predict(X)) == [CLASSES[i] for i in scores.argmax(1)]
    idx, top = clf.top_k(X, k=2)
    assert idx.shape == (10, 2) and (idx[:, 0] == scores.argmax(1)).all()
    assert (top[:, 0] >= top[:, 1]).all()


def test_accepts_torch_input(toy_encoder):
    import torch

    clf = ZeroShotClassifier(toy_encoder, CLASSES).fit()
    X = torch.nn.functional.normalize(torch.randn(4, clf.weights_.shape[1]), dim=-1)
    np.testing.assert_allclose(
        clf.decision_function(X), clf.decision_function(X.numpy()), atol=1e-6
    )


def test_errors(toy_encoder):
    clf = ZeroShotClassifier(toy_encoder, CLASSES)
    with pytest.raises(NotFittedError, match="call fit"):
        clf.decision_function(np.zeros((1, 8), np.float32))
    clf.fit()
    with pytest.raises(InvalidParameterError, match="dimension 3 but the classifier"):
        clf.decision_function(np.zeros((2, 3), np.float32))
    with pytest.raises(InvalidParameterError, match="1-D"):
        clf.decision_function(np.zeros(clf.weights_.shape[1], np.float32))
    with pytest.raises(InvalidParameterError, match="needs classes"):
        ZeroShotClassifier(toy_encoder).fit()


def test_zero_shot_accuracy_on_toy_test_splits(toy_encoder, toy_suite):
    """The shipped toy model is well above chance on every toy dataset (real encoding end to end)."""
    from zsvl.data.splits import read_split_file
    from zsvl.eval.metrics import topk_accuracy
    from zsvl.toy.suite import TOY_DATASETS

    for spec in TOY_DATASETS:
        test = read_split_file(toy_suite / spec.folder / spec.split_file)["test"]
        paths, labels = test.paths[::4], np.asarray(test.labels[::4])  # 10 images per class
        enc = toy_encoder.encode_images(paths)
        clf = ZeroShotClassifier(toy_encoder, test.classes, templates=[spec.template]).fit()
        acc = topk_accuracy(clf.decision_function(enc.embeddings), labels)
        chance = 100.0 / len(test.classes)
        assert acc > max(3 * chance, 30.0), (spec.name, acc)
