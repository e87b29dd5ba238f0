"""Candidate class names from retrieved captions (CaSED's vocabulary step).

Per image: clean every caption (URLs, punctuation, digits), lower-case, tokenise, singularise,
tag parts of speech, drop stop words and short words, then count words and short noun phrases
(adjective/noun runs ending in a noun, up to ``max_words`` long) over the image's captions; a term
is a candidate when it occurs in at least ``min_count`` captions. The tagger is pluggable: any
callable ``tokens -> tags`` with tags "NOUN", "ADJ" or anything else; the default
:class:`HeuristicTagger` needs no data files, and :func:`nltk_tagger` adapts NLTK's tagger where its
model is installed.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from zsvl.errors import InvalidParameterError

__all__ = ["CandidateExtractor", "HeuristicTagger", "nltk_tagger", "singularize", "clean_caption",
           "tokenize", "STOP_WORDS", "Tagger"]

Tagger = Callable[[Sequence[str]], Sequence[str]]

_URL = re.compile(r"(https?://|www\.)\S+|\S+\.(com|org|net|jpg|jpeg|png)\b")
_NON_WORD = re.compile(r"[^a-z\s-]+")
_HYPHENS = re.compile(r"(^|\s)-+|-+(\s|$)")

# CaSED's list of words that describe the medium, not the content, plus stock-photo boilerplate
_MEDIUM = ("image photo picture pic logo illustration drawing painting stock vector icon clipart "
           "clip art background wallpaper close closeup close-up view shot frame render rendering "
           "sketch cartoon graphic design template poster print thumbnail file screenshot").split()
_FUNCTION = (
    "a an the this that these those there here it its it's they them their he she his her we you "
    "your our my me i of in on at to from by with without into onto over under above below near "
    "next beside against behind between through across around along about for as and or but nor "
    "so yet if than then while when where which who whom whose what why how is are was were be "
    "been being am has have had having do does did doing can could will would shall should may "
    "might must not no nor very too also just only some any each every all both few many much "
    "more most other another such own same one two three four five six seven eight nine ten "
    "first second up down out off again further once"
).split()
STOP_WORDS = frozenset(_MEDIUM) | frozenset(_FUNCTION)

_IRREGULAR = {
    "people": "person", "men": "man", "women": "woman", "children": "child", "mice": "mouse",
    "feet": "foot", "teeth": "tooth", "geese": "goose", "oxen": "ox", "dice": "die",
    "leaves": "leaf", "knives": "knife", "wives": "wife", "lives": "life", "wolves": "wolf",
    "halves": "half", "shelves": "shelf", "calves": "calf", "loaves": "loaf", "thieves": "thief",
}
_INVARIANT = frozenset(
    "series species sheep fish deer news glasses scissors pants jeans shorts trousers "
    "gas bus lens cactus virus octopus walrus iris canvas chess physics mathematics".split()
)
_KEEP_S = ("ss", "us", "is", "ous", "ics")


def singularize(word: str) -> str:
    """English singular of a lower-case ``word`` by rule (irregulars, -ies, -ches, -s ...)."""
    if len(word) <= 3 or word in _INVARIANT:
        return word
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "sses", "xes", "zes", "oes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(_KEEP_S):
        return word[:-1]
    return word


def clean_caption(caption: str) -> str:
    """Lower-cased caption without URLs, digits and punctuation (inner hyphens kept)."""
    text = _URL.sub(" ", caption.lower())
    text = _NON_WORD.sub(" ", text)
    return _HYPHENS.sub(" ", text)


def tokenize(caption: str) -> list[str]:
    return clean_caption(caption).split()


# -- part-of-speech tagging ------------------------------------------------------------------
_VERB_WORDS = frozenset(
    "sit sits sitting stand stands standing lie lies lying hold holds holding ride riding play "
    "playing look looking looks walk walking run running fly flying eat eating show shows showing "
    "shown seen made make makes use used using take taken taking go going get getting point "
    "pointing covered filled painted made isolated set placed located".split()
)
_ADJ_SUFFIXES = ("ful", "ous", "ive", "able", "ible", "al", "ic", "ish", "less", "ed", "ern", "ky")


class HeuristicTagger:
    """Dependency-free tagger: function words and verbs by list, -ly adverbs, -ing/-ed participles,
    adjectives by suffix; everything else is a noun. ``adjectives`` adds known adjectives."""

    def __init__(self, adjectives: Iterable[str] = ()) -> None:
        self.adjectives = frozenset(adjectives) | frozenset(
            "red orange yellow green blue purple pink brown black white grey gray small large big "
            "tiny huge little tall short long old young new round dark light bright plain solid "
            "striped dotted wavy zigzag checkered speckled".split()
        )

    def __call__(self, tokens: Sequence[str]) -> list[str]:
        return [self._tag(t) for t in tokens]

    def _tag(self, token: str) -> str:
        if token in _FUNCTION:
            return "OTHER"
        if token in self.adjectives:
            return "ADJ"
        if token in _VERB_WORDS or token.endswith("ing") and len(token) > 5:
            return "VERB"
        if token.endswith("ly") and len(token) > 4:
            return "ADV"
        if token.endswith(_ADJ_SUFFIXES) and len(token) > 5:
            return "ADJ"
        return "NOUN"


def nltk_tagger() -> Tagger:
    """NLTK's averaged perceptron tagger mapped to NOUN/ADJ/other; needs nltk and its tagger data
    installed locally (zsvl never downloads it)."""
    try:
        import nltk

        nltk.pos_tag(["test"])
    except (ImportError, LookupError) as exc:
        raise InvalidParameterError(
            "nltk_tagger() needs the nltk package and its 'averaged_perceptron_tagger' data "
            "installed locally; use the default HeuristicTagger otherwise."
        ) from exc

    def tag(tokens: Sequence[str]) -> list[str]:
        return ["NOUN" if t.startswith("NN") else "ADJ" if t.startswith("JJ") else "OTHER"
                for _, t in nltk.pos_tag(list(tokens))]

    return tag


# -- extraction -------------------------------------------------------------------------------
@dataclass
class CandidateExtractor:
    """Callable: captions of one image -> candidate names, most frequent first.

    min_count : a term must occur in at least this many of the image's captions (CaSED: 2).
    max_words : longest noun phrase kept (1 = single words only).
    min_chars : shorter words are dropped.
    stop_words : words never used (default :data:`STOP_WORDS`).
    tagger : part-of-speech tagger (default :class:`HeuristicTagger`); only NOUN/ADJ words are kept
        and phrases must end in a NOUN.
    max_candidates : keep at most this many per image (None: all).
    """

    min_count: int = 2
    max_words: int = 3
    min_chars: int = 3
    stop_words: frozenset[str] = STOP_WORDS
    tagger: Tagger | None = None
    max_candidates: int | None = None

    def __post_init__(self) -> None:
        if self.min_count < 1 or self.max_words < 1:
            raise InvalidParameterError("min_count and max_words must be >= 1.")
        self._tag = self.tagger or HeuristicTagger()
        self._seen: dict[str, tuple[str, ...]] = {}

    def terms(self, caption: str) -> set[str]:
        """The distinct candidate terms of one caption."""
        tokens, tags = self._tagged(caption)
        out: set[str] = set()
        run: list[int] = []
        for i, (tok, tag) in enumerate(zip(tokens, tags, strict=True)):
            good = tag in ("NOUN", "ADJ") and tok not in self.stop_words and len(tok) >= self.min_chars
            if good:
                out.add(tok)
                run.append(i)
            else:
                run = []
            if good and tag == "NOUN":
                for n in range(2, min(self.max_words, len(run)) + 1):
                    out.add(" ".join(tokens[j] for j in run[-n:]))
        return out

    def _tagged(self, caption: str) -> tuple[list[str], Sequence[str]]:
        if caption not in self._seen:
            raw = tokenize(caption)
            tags = list(self._tag(raw))
            tokens = [singularize(t) if tag == "NOUN" else t for t, tag in zip(raw, tags, strict=True)]
            if len(self._seen) > 200_000:
                self._seen.clear()
            self._seen[caption] = (tuple(tokens), tuple(tags))
        tokens, tags = self._seen[caption]
        return list(tokens), tags

    def __call__(self, captions: Sequence[str]) -> list[str]:
        counts: Counter[str] = Counter()
        for caption in captions:
            counts.update(self.terms(caption))
        kept = [(t, c) for t, c in counts.items() if c >= self.min_count]
        kept.sort(key=lambda tc: (-tc[1], -len(tc[0].split()), tc[0]))
        names = [t for t, _ in kept]
        return names[: self.max_candidates] if self.max_candidates else names

    def batch(self, captions_per_image: Sequence[Sequence[str]]) -> list[list[str]]:
        """Candidates for many images: one list per image."""
        return [self(caps) for caps in captions_per_image]
