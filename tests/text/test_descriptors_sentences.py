"""CBD sentence building: the reference's exact strings, and the default that fixes its rule."""

from __future__ import annotations

import re

import pytest

from zsvl.errors import InvalidParameterError
from zsvl.text.sentences import (
    CBD_REFERENCE_TEMPLATE,
    CBD_TEMPLATE,
    WAFFLE_TEMPLATE,
    approx_tokens,
    build_sentences,
    clean_descriptor,
    descriptor_sentence,
    which_clause,
)

# descriptors as LLM-written files have them: bare noun phrases, verbs, articles, capitals,
# pronoun openers, trailing periods, subjects of their own
DESCRIPTORS = [
    "antennae",
    "almond-shaped eyes",
    "a seabird",
    "an orange beak",
    "A long tail",
    "abdomen with yellow bands",
    "has no corners",
    "hasty flight",
    "often found near water",
    "typically brown",
    "may have spots",
    "mayfly-like wings",
    "can be red",
    "canvas texture",
    "used for cutting",
    "user interface on a screen",
    "four equal sides",
    "the bands are of different widths",
    "the bands may be curved or straight",
    "It is a seabird.",
    "They have long legs.",
    "it's red",
    "- black and white plumage",
    "made of wood",
    "webbed feet",
    "",
    "  two   spaces ",
    "usually served in a glass",
    'the word "ambulance" written on the side',
]


def _reference_sentence(classname: str, descriptor: str, imagenet: bool) -> str:
    """classify_by_description_release's text, written out here: prepend the class name,
    ", ", a clause picked by the descriptor's first letters, the descriptor, "." on ImageNet."""
    if descriptor[:1] == "a":  # covers "an" as well
        clause = "which is " + descriptor
    elif any(descriptor[: len(w)] == w for w in ("has", "often", "typically", "may", "can")):
        clause = "which " + descriptor
    elif descriptor[:4] == "used":
        clause = "which is " + descriptor
    else:
        clause = "which has " + descriptor
    return " ".join(classname.split("_")) + ", " + clause + ("." if imagenet else "")


@pytest.mark.parametrize("imagenet", [False, True])
def test_reference_style_reproduces_the_reference_strings(imagenet):
    template = CBD_TEMPLATE if imagenet else CBD_REFERENCE_TEMPLATE
    names = ["great_white_shark", "zebra", "tench"]
    lists = [DESCRIPTORS[:15], DESCRIPTORS[15:], []]  # the last class has no descriptors
    texts, owners = build_sentences(names, lists, template=template, style="reference")
    expected = [
        _reference_sentence(n, d, imagenet)
        for n, items in zip(names, lists, strict=True)
        for d in (items or [""])
    ]
    assert texts == expected
    assert owners == [0] * 15 + [1] * (len(DESCRIPTORS) - 15) + [2]
    # the examples and the empty-class fallback, spelled out
    end = "." if imagenet else ""
    assert "zebra, which has the bands are of different widths" + end in texts
    assert "great white shark, which is antennae" + end in texts
    assert texts[-1] == ("tench, which has ." if imagenet else "tench, which has ")


def test_default_style_fixes_the_rule_and_keeps_content():
    say = lambda d: descriptor_sentence("zebra", d)  # noqa: E731
    assert say("antennae") == "zebra, which has antennae."
    assert (
        say("the bands are of different widths")
        == "zebra, which has the bands are of different widths."
    )  # the subject noun stays
    assert say("almond-shaped eyes") == "zebra, which has almond-shaped eyes."
    assert say("a seabird") == "zebra, which is a seabird."
    assert say("A long tail") == "zebra, which is a long tail."
    assert say("canvas texture") == "zebra, which has canvas texture."
    assert say("user interface on a screen") == "zebra, which has user interface on a screen."
    assert say("It is a seabird.") == "zebra, which is a seabird."
    assert say("They have long legs.") == "zebra, which has long legs."  # verb agrees
    assert say("They usually have long legs") == "zebra, which usually has long legs."
    assert say("made of wood") == "zebra, which is made of wood."
    assert say("webbed feet") == "zebra, which has webbed feet."
    # every word of every descriptor survives (apart from pronoun openers and punctuation)
    for d in DESCRIPTORS:
        lost = set(re.findall(r"\w+", d.lower())) - set(re.findall(r"\w+", say(d).lower()))
        assert lost <= {"it", "they", "s", "have"}, (d, lost)


@pytest.mark.parametrize(
    ("descriptor", "clause"),
    [
        ("antennae", "which has"),  # the reference gave "which is" (first letter a)
        ("a seabird", "which is"),
        ("an orange beak", "which is"),
        ("almond-shaped eyes", "which has"),  # starts with "a", not with the word "a"
        ("has no corners", "which"),
        ("hasty flight", "which has"),
        ("often found near water", "which"),
        ("canvas texture", "which has"),
        ("used for cutting", "which is"),
        ("is a seabird", "which"),
        ("resembles a cat", "which"),
        ("usually has a gondola", "which"),
        ("made of wood", "which is"),
        ("usually made of steel", "which is"),
        ("attached to the mast", "which is"),
        ("available in many colours", "which is"),
        ("red in colour", "which is"),
        ("taller than it is wide", "which is"),
        ("art on the walls", "which has"),
        ("coiled shape", "which has"),  # participles before a noun describe it
        ("evenly spaced bars", "which has"),
        ("hovering flight", "which has"),
        ("stripes on the back", "which has"),
        ("four equal sides", "which has"),
    ],
)
def test_which_clause_uses_the_first_word(descriptor, clause):
    assert which_clause(descriptor) == clause


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("It is a seabird.", "a seabird"),
        ("It is red", "is red"),
        ("- They have long legs.", "has long legs"),
        ("It's red", "is red"),
        ("The bird has a hooked beak", "the bird has a hooked beak"),
        ("the bands are of different widths", "the bands are of different widths"),
        ("  Wings with white bars..  ", "wings with white bars"),
        ("USB ports", "USB ports"),
    ],
)
def test_clean_descriptor(raw, clean):
    assert clean_descriptor(raw) == clean


def test_sentences():
    assert descriptor_sentence("sea_gull", "It is a seabird.") == "sea gull, which is a seabird."
    assert descriptor_sentence("cat", "It has pointed ears.") == "cat, which has pointed ears."
    assert (
        descriptor_sentence("cardinal", "red feathers", template=WAFFLE_TEMPLATE, concept="bird")
        == "A photo of a bird: A photo of a cardinal, which has red feathers."
    )
    assert descriptor_sentence("cat", "x", template="{d}") == "x"
    with pytest.raises(InvalidParameterError, match="needs"):
        descriptor_sentence("cat", "x", template="a photo")
    with pytest.raises(InvalidParameterError, match="style must be one of"):
        descriptor_sentence("cat", "x", style="fancy")
    texts, owners = build_sentences(["a", "b", "c"], [["x", "y"], ["z"], []])
    assert texts == ["a, which has x.", "a, which has y.", "b, which has z."]
    assert owners == [0, 0, 1]


def test_long_descriptors_are_cut_inside_the_descriptor():
    long = "a " + "very " * 120 + "long neck"
    text = descriptor_sentence("great crested grebe", long)
    assert text.startswith("great crested grebe, which is a very")
    assert approx_tokens(text) <= 75 and text.endswith(".")
    # the reference never cuts (its tokenizer would refuse the text)
    assert descriptor_sentence("grebe", long, style="reference").endswith("long neck.")


def test_descriptor_classifier_reference_style():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from text_fakes import BagOfWordsEncoder

    from zsvl.methods.descriptors import DescriptorClassifier
    from zsvl.text.descriptors import DescriptorSet

    names = ["zebra", "ant", "tench"]
    lists = [["the bands are of different widths", "Stripes."], ["antennae"], []]
    ds = DescriptorSet.from_lists(names, lists)
    enc = BagOfWordsEncoder(16)
    ref = DescriptorClassifier(enc, ds, sentence_style="reference").fit()
    assert ref.texts_ == [
        _reference_sentence(n, d, False)
        for n, items in zip(names, lists, strict=True)
        for d in items or [""]
    ]
    assert list(ref.text_owner_) == [0, 0, 1, 2] and ref.fallback_classes_ == []
    imagenet = DescriptorClassifier(enc, ds, sentence_style="reference", template=CBD_TEMPLATE)
    assert imagenet.fit().texts_[-1] == "tench, which has ."
    default = DescriptorClassifier(enc, ds).fit()
    assert default.texts_[:3] == [
        "zebra, which has the bands are of different widths.",
        "zebra, which has stripes.",
        "ant, which has antennae.",
    ]
    assert default.fallback_classes_ == ["tench"]
