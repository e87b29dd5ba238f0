"""CaSED candidate words: vic's pipeline (default), its taggers, and zsvl's phrase extractor."""

from __future__ import annotations

import importlib.util
import string

import pytest

from zsvl.errors import InvalidParameterError
from zsvl.text.candidates import CandidateExtractor, reference_words
from zsvl.text.pos import HeuristicTagger, coarse_tag, get_tagger, penn_tag

# alt-text-like captions of three images, with the usual noise: URLs, file names, <tags>,
# hyphens, digits, capitals, plurals, medium words
CAPTIONS = [
    [
        "Grey wolves running in the snow - stock photo",
        "grey wolf (Canis lupus) in snow.jpg",
        "Wolf pack at http://example.com/wolves.png",
        "<b>Wolves</b> in winter snow",
        "a lone wolf howling, winter 2019",
        "Image of grey wolf",
        "wolves & snow",
        "T-shirt with a wolf print",
        "two wolves playing in the snow",
        "Winter wolves",
    ],
    [
        "berries and potatoes in a glass bowl",
        "Glass bowl of berries",
        "the bus stops",
        "a bus on the street",
        "fresh berries",
        "potatoes, berries",
        "red bus",
        "glasses on a table",
        "a kitchen table with a glass",
        "a Double-decker bus",
    ],
    ["Portrait of a smiling woman", "woman smiling portrait photo", "x"],
    [],
]

_KEEP = {"NN", "NNS", "NNP", "NNPS", "JJ", "JJR", "JJS", "VBG", "VBN"}
_DROP = {
    "image",
    "photo",
    "picture",
    "thumbnail",
    "logo",
    "symbol",
    "clipart",
    "portrait",
    "painting",
    "illustration",
    "icon",
    "profile",
}


def _vic_words(captions, tag):
    """vic's default_vocab_transform for one image, written out with loops (no zsvl code)."""
    import inflect

    text = " ".join(captions)
    out, depth = [], 0  # drop <...> tokens
    for ch in text:
        if ch == "<":
            depth = 1
        elif ch == ">" and depth:
            depth = 0
            continue
        if not depth:
            out.append(ch)
    text = "".join(out)
    text = " ".join(w if "http" not in w else w[: w.index("http")] for w in text.split(" "))
    text = "".join(c for c in text if c.isalnum() or c == "_" or c.isspace() or c in "-.'&")
    # ".ext": a period followed by word characters goes with them
    chars, i = [], 0
    while i < len(text):
        if text[i] == "." and i + 1 < len(text) and (text[i + 1].isalnum() or text[i + 1] == "_"):
            i += 1
            while i < len(text) and (text[i].isalnum() or text[i] == "_"):
                i += 1
            continue
        chars.append(text[i])
        i += 1
    text = "".join(chars).replace("_", " ").replace("-", " ")
    words = [w for w in text.split() if len(w) >= 3]
    words = ["".join(c for c in w if c in string.ascii_letters) for w in words]
    words = [w.lower() for w in words if w]
    engine = inflect.engine()
    words = [
        engine.singular_noun(w) or w
        if w.endswith("s") and w[-2:] not in ("ss", "us", "is") and w[-3:] not in ("ies", "oes")
        else w
        for w in words
    ]
    words = [w for w in words if w not in _DROP]
    counts = {w: words.count(w) for w in words}
    need = min(2, max(counts.values(), default=0))
    words = [w for w in words if counts[w] >= need]
    return {w for w, t in zip(words, tag(words), strict=True) if t in _KEEP}


def _lexicon_tagger(tokens):
    """A fixed toy tagger: a few known adjectives and verbs, everything else a noun."""
    known = {
        "grey": "JJ",
        "red": "JJ",
        "fresh": "JJ",
        "running": "VBG",
        "playing": "VBG",
        "smiling": "VBG",
        "the": "DT",
        "and": "CC",
        "with": "IN",
        "stop": "VBZ",
        "two": "CD",
        "lone": "JJ",
        "howling": "VBG",
    }
    return [known.get(t, "NN") for t in tokens]


@pytest.mark.parametrize("caps", CAPTIONS)
def test_reference_style_matches_an_independent_vic_pipeline(caps):
    got = CandidateExtractor(tagger=_lexicon_tagger)(caps)
    assert set(got) == _vic_words(caps, _lexicon_tagger)
    assert len(got) == len(set(got))


def test_reference_style_by_hand():
    words = reference_words(CAPTIONS[0], _lexicon_tagger)
    # plurals -> inflect singular; URL, file extension, <b> tag and the medium word "image" gone
    assert words[0] == "wolf" and "wolves" not in words
    assert {"snow", "grey", "winter", "wolf"} <= set(words)
    assert not {"image", "http", "jpg", "png", "com", "b"} & set(words)
    # -ies/-oes/-ss/-us words are not singularised (vic's rule); "glasses" is
    words = reference_words(CAPTIONS[1], _lexicon_tagger)
    assert {"berries", "potatoes", "glass", "bus", "bowl"} <= set(words)
    # nothing reaches 2: the most frequent count is used ("portrait" and "photo" are dropped)
    assert reference_words(CAPTIONS[2], _lexicon_tagger) == ["smiling", "woman"]
    assert reference_words([], _lexicon_tagger) == []


def test_default_tagger_is_offline_and_penn():
    name, tag = get_tagger("auto")
    spacy_ready = importlib.util.find_spec("spacy") and importlib.util.find_spec("en_core_web_sm")
    assert name == ("spacy" if spacy_ready else "textblob")
    tags = tag("grey wolf running snow".split())
    assert len(tags) == 4 and tags[1].startswith("NN") and tags[2] == "VBG"
    words = CandidateExtractor()(CAPTIONS[0])
    assert words[0] == "wolf" and set(words) == _vic_words(CAPTIONS[0], tag)


def test_heuristic_fallback_and_tag_maps():
    name, tag = get_tagger("heuristic")
    assert name == "heuristic" and isinstance(tag, HeuristicTagger)
    assert [
        penn_tag(t, c)
        for t, c in zip(
            ["dogs", "red", "running", "the"], tag(["dogs", "red", "running", "the"]), strict=True
        )
    ] == ["NNS", "JJ", "VBG", "XX"]
    assert [coarse_tag(t) for t in ("NNS", "JJR", "VBG", "RB", "DT", "NOUN")] == [
        "NOUN",
        "ADJ",
        "VERB",
        "ADV",
        "OTHER",
        "NOUN",
    ]
    assert "wolf" in CandidateExtractor(tagger="heuristic")(CAPTIONS[0])
    with pytest.raises(InvalidParameterError, match="tagger must be one of"):
        get_tagger("flair")
    with pytest.raises(InvalidParameterError, match="style must be one of"):
        CandidateExtractor(style="nouns")


def test_phrases_style_is_zsvls_earlier_extractor():
    e = CandidateExtractor(style="phrases", tagger="heuristic")
    caps = ["A photo of two red stars!", "red star on www.example.com/x.jpg", "a red star", "dogs"]
    assert e(caps) == ["red star", "red", "star"]
    assert CandidateExtractor(tagger="heuristic")(caps) == ["red", "star"]  # words only
