"""WaffleCLIP: the published recipe (default) and zsvl's descriptor-matched variant."""

from __future__ import annotations

import functools
import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from text_fakes import BagOfWordsEncoder  # noqa: E402

from zsvl.errors import InvalidParameterError  # noqa: E402
from zsvl.methods.descriptors import DescriptorClassifier  # noqa: E402
from zsvl.methods.waffle import (  # noqa: E402
    WaffleCLIPClassifier,
    reference_descriptors,
    reference_recipe,
    waffle_descriptors,
    waffle_shape,
)
from zsvl.text.descriptors import DescriptorSet  # noqa: E402

CLASSES = ["red circle", "blue square", "green star"]
DESCRIPTORS = [
    ["round outline", "red in colour"],
    ["four equal sides", "blue", "flat top edge"],
    ["five sharp points", "green in colour", "spiky star outline", "narrow arms"],
]
# ImageNet-like names: one to four words, an underscore, a long word
NAMES = [
    "tench",
    "great white shark",
    "hammerhead_shark",
    "American black bear",
    "Band Aid",
    "sulphur-crested cockatoo",
    "goldfish",
]
FILE = [
    ["Y-shaped tail (forked)", "It's olive-green."],
    ["a torpedo, grey body"],
    [],
    ["black or brown fur", "Rounded ears; 'teddy' face"],
    ["beige, adhesive strip"],
    ["white feathers & yellow crest"],
    ["orange scales!"],
]


@functools.lru_cache(maxsize=1)
def _english_words() -> list[str]:
    from english_words import get_english_words_set

    return sorted(get_english_words_set(["web2"], lower=True, alpha=True))


class _Recipe:
    """WaffleCLIP's ``waffle`` mode, re-derived here from the paper's description and the
    reference's arithmetic (lengths from the class names, pool from the descriptor file)."""

    def __init__(self, names, descriptors):
        wordified = [n.replace("_", " ") for n in names]
        self.n_words = max(1, int(np.round(np.mean([len(n.split(" ")) for n in wordified]))))
        self.cut = int(
            np.round(np.mean([np.mean([len(w) for w in n.split(" ")]) for n in wordified]))
        )
        self.groups = int(np.round(np.mean([sum(c == " " for c in n) for n in names]))) + 1
        longest = math.ceil(np.mean([max(len(w) for w in n.split(" ")) for n in names]))
        self.per_group = (longest + self.groups - longest % self.groups) // self.groups
        text = "".join(d for ds in descriptors for d in ds)
        self.pool = {c for c in text if c not in " ,."}

    @staticmethod
    def sentence(name, d):
        # WaffleCLIP's label texts with the CBD clause chosen by the first letters
        if d[:1] == "a":
            clause = "which is"
        elif d.startswith(("has", "often", "typically", "may", "can")):
            clause = "which"
        elif d.startswith("used"):
            clause = "which is"
        else:
            clause = "which has"
        return "A photo of a " + name.replace("_", " ") + ", " + clause + " " + d + "."


class _Recorder(BagOfWordsEncoder):
    def __init__(self, dim: int = 32) -> None:
        super().__init__(dim)
        self.seen: list[str] = []

    def encode_texts(self, texts, *, batch_size: int = 256):
        self.seen += list(texts)
        return super().encode_texts(texts, batch_size=batch_size)


def test_reference_recipe_lengths_and_pool():
    ref = _Recipe(NAMES, FILE)
    recipe = reference_recipe(NAMES, FILE)
    assert (recipe.n_pairs, recipe.words, recipe.word_length) == (15, ref.n_words, ref.cut)
    assert (recipe.groups, recipe.group_length) == (ref.groups, ref.per_group)
    assert set(recipe.characters) == ref.pool
    assert {"Y", "(", ")", "'", ";", "&", "!", "-"} <= ref.pool  # capitals and punctuation
    assert not {" ", ",", "."} & set(recipe.characters)
    # by hand: words per name 14/7 = 2; mean word length 46.17/7 = 6.6 -> 7; spaces 6/7 -> 1,
    # so 2 groups; longest raw word 61/7 = 8.7 -> 9, raised to 10 -> 2 groups of 5
    assert (recipe.words, recipe.word_length, recipe.groups, recipe.group_length) == (2, 7, 2, 5)


def test_reference_descriptors_follow_the_recipe():
    recipe = reference_recipe(NAMES, FILE)
    ref = _Recipe(NAMES, FILE)
    cut_words = {w[: ref.cut] for w in _english_words()}
    descs = reference_descriptors(recipe, seed=3)
    assert len(descs) == 30
    words, noise = descs[0::2], descs[1::2]  # interleaved: word string, character string
    for w in words:
        assert len(w.split(" ")) == ref.n_words and all(x in cut_words for x in w.split(" "))
    for n in noise:
        groups = n.split(", ")
        assert len(groups) == ref.groups
        assert all(len(g) == ref.per_group and set(g) <= ref.pool for g in groups)
    assert reference_descriptors(recipe, seed=3) == descs  # deterministic per seed
    assert reference_descriptors(recipe, seed=4) != descs
    assert len(reference_descriptors(recipe, seed=0, kind="chars")) == 15
    # the words are spread over the list, not the start of it
    firsts = {w[0] for d in words for w in d.split(" ")}
    assert len(firsts) >= 5


def test_reference_texts_are_the_same_30_for_every_class():
    enc = _Recorder()
    ds = DescriptorSet.from_lists(NAMES, FILE)
    clf = WaffleCLIPClassifier(enc, match=ds, seeds=(0, 1)).fit()
    assert len(enc.seen) == 2 * len(NAMES) * 30
    for s, descs in enumerate(clf.seed_descriptors_):
        block = enc.seen[s * len(NAMES) * 30 : (s + 1) * len(NAMES) * 30]
        expected = [_Recipe.sentence(n, d) for n in NAMES for d in descs]
        assert block == expected
    assert clf.seed_descriptors_[0] != clf.seed_descriptors_[1]
    # concept prompt as WaffleCLIP's --label_before_text='A photo of a bird: a '
    enc2 = _Recorder()
    WaffleCLIPClassifier(enc2, NAMES[:2], concept="fish", seeds=(0,)).fit()
    assert enc2.seen[0].startswith("A photo of a fish: a tench, which")


def test_accuracy_over_seeds_is_the_mean_and_std_of_per_seed_accuracy():
    enc = BagOfWordsEncoder(32)
    clf = WaffleCLIPClassifier(
        enc, CLASSES, match=DescriptorSet.from_lists(CLASSES, DESCRIPTORS), seeds=(0, 1, 2, 3)
    ).fit()
    X = enc.images_of(CLASSES * 5, noise=2.0)
    y = np.tile(np.arange(3), 5)
    mean, std, per_seed = clf.accuracy_over_seeds(X, y)
    scores = clf.seed_scores(X)
    expected = [100 * np.mean(scores[s].argmax(1) == y) for s in range(4)]
    assert per_seed == pytest.approx(expected)
    assert (mean, std) == pytest.approx((np.mean(expected), np.std(expected)))
    # reference: seed 2, class 1, mean of cosines to its 30 texts
    texts = [_Recipe.sentence("blue square", d) for d in clf.seed_descriptors_[2]]
    np.testing.assert_allclose(scores[2][:, 1], (X @ enc.encode_texts(texts).T).mean(1), atol=1e-5)
    np.testing.assert_allclose(clf.decision_function(X), scores.mean(0), atol=1e-5)


def test_matched_shape_is_matched_to_the_descriptors_or_the_names():
    shape = waffle_shape(CLASSES, DESCRIPTORS)
    assert shape.count == 3  # mean of 2, 3, 4 descriptors
    assert shape.words == 3  # mean words per descriptor: 23 / 9 rounds to 3
    assert shape.word_length == round(
        np.mean([len(w) for ds in DESCRIPTORS for d in ds for w in d.split()])
    )
    plain = waffle_shape(["great white shark", "tiger shark"])
    assert (plain.count, plain.words) == (30, 2)
    assert waffle_shape(CLASSES, DESCRIPTORS, count=8).count == 8


def test_matched_descriptors_mixed_words_and_characters():
    shape = waffle_shape(CLASSES, count=10)
    words = waffle_descriptors(shape, kind="mixed", seed=0, exclude=["about town"])
    assert len(words) == 10
    assert all(len(d.split()) == shape.words for d in words)
    vocabulary = set(_english_words())
    assert all(w in vocabulary and 4 <= len(w) <= 8 for d in words[:5] for w in d.split())
    random_chars = words[5:]
    assert all(
        len(w) == shape.word_length and w.isalnum() and w == w.lower()
        for d in random_chars
        for w in d.split()
    )
    assert waffle_descriptors(shape, seed=0) == waffle_descriptors(shape, seed=0)
    assert waffle_descriptors(shape, seed=0) != waffle_descriptors(shape, seed=1)
    with pytest.raises(InvalidParameterError, match="kind"):
        waffle_descriptors(shape, kind="emoji")


def test_matched_recipe_classifier():
    enc = _Recorder(32)
    ds = DescriptorSet.from_lists(CLASSES, DESCRIPTORS)
    control = WaffleCLIPClassifier(enc, match=ds, recipe="matched", seeds=(0, 1, 2, 3)).fit()
    assert list(control.classes_) == CLASSES and control.recipe_.count == 3
    assert control.seed_weights_.shape == (4, 3, 32)
    assert enc.seen[0].startswith("A photo of a red circle, which has ")
    assert len(enc.seen) == 4 * 3 * 3


def test_descriptor_classifier_control_uses_the_reference_recipe():
    enc = BagOfWordsEncoder(32)
    ds = DescriptorSet.from_lists(CLASSES, DESCRIPTORS)
    control = DescriptorClassifier(enc, ds).waffle_control(seeds=(0, 1)).fit()
    assert control.recipe == "reference" and len(control.seed_descriptors_[0]) == 30
    assert set("".join(control.seed_descriptors_[0][1::2])) - {",", " "} <= set(
        "".join(d for ds_ in DESCRIPTORS for d in ds_)
    )


def test_errors():
    with pytest.raises(InvalidParameterError, match="needs classes"):
        WaffleCLIPClassifier(BagOfWordsEncoder(8)).fit()
    with pytest.raises(InvalidParameterError, match="seeds"):
        WaffleCLIPClassifier(BagOfWordsEncoder(8), CLASSES, seeds=()).fit()
    with pytest.raises(InvalidParameterError, match="recipe must be one of"):
        WaffleCLIPClassifier(BagOfWordsEncoder(8), CLASSES, recipe="cbd").fit()
    with pytest.raises(InvalidParameterError, match="n_pairs"):
        reference_recipe(CLASSES, n_pairs=0)
