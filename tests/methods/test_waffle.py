"""WaffleCLIP controls: matched counts and lengths, shared descriptors, seeds."""

from __future__ import annotations

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
    waffle_descriptors,
    waffle_shape,
)
from zsvl.text.descriptors import DescriptorSet  # noqa: E402

CLASSES = ["red circle", "blue square", "green star"]
DESCRIPTORS = [["round outline", "red in colour"], ["four equal sides", "blue", "flat top edge"],
               ["five sharp points", "green in colour", "spiky star outline", "narrow arms"]]


def test_shape_is_matched_to_the_descriptors_or_the_names():
    shape = waffle_shape(CLASSES, DESCRIPTORS)
    assert shape.count == 3  # mean of 2, 3, 4 descriptors
    assert shape.words == 3  # mean words per descriptor: 23 / 9 rounds to 3
    assert shape.word_length == round(np.mean([len(w) for ds in DESCRIPTORS for d in ds
                                              for w in d.split()]))
    plain = waffle_shape(["great white shark", "tiger shark"])
    assert (plain.count, plain.words) == (30, 2)
    assert waffle_shape(CLASSES, DESCRIPTORS, count=8).count == 8


def test_descriptors_mixed_words_and_characters():
    shape = waffle_shape(CLASSES, count=10)
    words = waffle_descriptors(shape, kind="mixed", seed=0, exclude=["about town"])
    assert len(words) == 10
    assert all(len(d.split()) == shape.words for d in words)
    random_chars = words[5:]
    assert all(len(w) == shape.word_length for d in random_chars for w in d.split())
    assert "about" not in " ".join(words[:5]).split()
    assert waffle_descriptors(shape, seed=0) == waffle_descriptors(shape, seed=0)
    assert waffle_descriptors(shape, seed=0) != waffle_descriptors(shape, seed=1)
    assert len(waffle_descriptors(shape, kind="chars", seed=0)[0].split()[0]) == shape.word_length
    with pytest.raises(InvalidParameterError, match="kind"):
        waffle_descriptors(shape, kind="emoji")


def test_classifier_averages_seeds_with_the_same_descriptors_for_every_class():
    enc = BagOfWordsEncoder(32)
    ds = DescriptorSet.from_lists(CLASSES, DESCRIPTORS)
    control = DescriptorClassifier(enc, ds).waffle_control(seeds=(0, 1, 2, 3)).fit()
    assert list(control.classes_) == CLASSES and control.shape_.count == 3
    assert control.seed_weights_.shape == (4, 3, 32)
    X = enc.images_of(CLASSES * 3, noise=1.0)
    per_seed = control.seed_scores(X)
    np.testing.assert_allclose(control.decision_function(X), per_seed.mean(0), atol=1e-5)
    # reference: seed 2, class 1, by hand
    from zsvl.text.sentences import WAFFLE_TEMPLATE, descriptor_sentence

    texts = [descriptor_sentence("blue square", d, template=WAFFLE_TEMPLATE)
             for d in control.seed_descriptors_[2]]
    np.testing.assert_allclose(per_seed[2][:, 1], (X @ enc.encode_texts(texts).T).mean(1),
                               atol=1e-5)
    assert texts[0].startswith("A photo of a blue square, which has ")


def test_needs_classes():
    with pytest.raises(InvalidParameterError, match="needs classes"):
        WaffleCLIPClassifier(BagOfWordsEncoder(8)).fit()
    with pytest.raises(InvalidParameterError, match="seeds"):
        WaffleCLIPClassifier(BagOfWordsEncoder(8), CLASSES, seeds=()).fit()
