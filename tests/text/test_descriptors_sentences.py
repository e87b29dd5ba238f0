"""CBD sentence building: the word-boundary rule, cleaning, truncation, concept prefix."""

from __future__ import annotations

import pytest

from zsvl.errors import InvalidParameterError
from zsvl.text.sentences import (
    WAFFLE_TEMPLATE,
    approx_tokens,
    build_sentences,
    clean_descriptor,
    descriptor_sentence,
    which_clause,
)


@pytest.mark.parametrize(
    ("descriptor", "clause"),
    [
        ("antennae", "which has"),  # the reference gave "which is" (first letter a)
        ("a seabird", "which is"),
        ("an orange beak", "which is"),
        ("almond-shaped eyes", "which has"),  # starts with "a", not with the word "a"
        ("has no corners", "which"),
        ("often found near water", "which"),
        ("used for cutting", "which is"),
        ("red in colour", "which is"),
        ("four equal sides", "which has"),
    ],
)
def test_which_clause_uses_the_first_word(descriptor, clause):
    assert which_clause(descriptor) == clause


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("It is a seabird.", "a seabird"),
        ("- They have long legs.", "has long legs"),
        ("It's red", "is red"),
        ("The bird has a hooked beak", "has a hooked beak"),
        ("  Wings with white bars..  ", "wings with white bars"),
        ("USB ports", "USB ports"),
    ],
)
def test_clean_descriptor(raw, clean):
    assert clean_descriptor(raw) == clean


def test_sentences():
    assert descriptor_sentence("sea_gull", "It is a seabird.") == "sea gull, which is a seabird."
    assert descriptor_sentence("cat", "It has pointed ears.") == "cat, which has pointed ears."
    assert (descriptor_sentence("cardinal", "red feathers", template=WAFFLE_TEMPLATE,
                                concept="bird")
            == "A photo of a bird: A photo of a cardinal, which has red feathers.")
    assert descriptor_sentence("cat", "x", template="{d}") == "x"
    with pytest.raises(InvalidParameterError, match="needs"):
        descriptor_sentence("cat", "x", template="a photo")
    texts, owners = build_sentences(["a", "b"], [["x", "y"], ["z"]])
    assert texts == ["a, which has x.", "a, which has y.", "b, which has z."]
    assert owners == [0, 0, 1]


def test_long_descriptors_are_cut_inside_the_descriptor():
    text = descriptor_sentence("great crested grebe", "a " + "very " * 120 + "long neck")
    assert text.startswith("great crested grebe, which is a very")
    assert approx_tokens(text) <= 75 and text.endswith(".")
