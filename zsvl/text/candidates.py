"""Candidate class names from retrieved captions (CaSED's vocabulary step).

Two styles, one callable :class:`CandidateExtractor` (captions of one image -> names):

- ``"reference"`` (default) follows vic's ``default_vocab_transform`` step by step on the image's
  captions joined into one text: drop <tokens>, URLs ("http..."), special characters (all but
  word characters, whitespace and - . ' &), ".ext" file extensions; turn _ and - into spaces;
  drop words shorter than 3 characters; delete non-letters; lower-case; singularise words ending
  in "s" (not -ss/-us/-is/-ies/-oes) with ``inflect``; drop the 12 medium words (image, photo,
  ...); keep words counted at least ``min_count`` (2) times in the whole text (the most frequent
  count when none is); keep those a part-of-speech tagger marks as noun, adjective, gerund or past
  participle (NN, NNS, NNP, NNPS, JJ, JJR, JJS, VBG, VBN), tagging that filtered word string as
  the reference does; distinct words. The reference tags with flair's ``pos-english-fast`` model
  (a Hugging Face download); zsvl uses spaCy when an English pipeline is installed, else
  TextBlob's pattern tagger (its lexicon ships in the PyPI package), else its own heuristic
  (see :mod:`zsvl.text.pos`). Words come out most frequent first (the reference's order is a
  set's).
- ``"phrases"`` (zsvl's earlier extractor): per caption, clean, tokenise, singularise by rule,
  tag, drop stop words and short words, then count words and short noun phrases (adjective/noun
  runs ending in a noun, up to ``max_words`` long) over the captions; a term is a candidate when
  it occurs in at least ``min_count`` captions.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from zsvl.errors import InvalidParameterError
from zsvl.text.pos import (
    FUNCTION_WORDS,
    HeuristicTagger,
    Tagger,
    coarse_tag,
    get_tagger,
    nltk_tagger,
    penn_tag,
)

__all__ = [
    "CandidateExtractor",
    "HeuristicTagger",
    "nltk_tagger",
    "singularize",
    "clean_caption",
    "tokenize",
    "STOP_WORDS",
    "REFERENCE_DROP_WORDS",
    "REFERENCE_TAGS",
    "Tagger",
    "reference_words",
    "STYLES",
]

STYLES = ("reference", "phrases")

_URL = re.compile(r"(https?://|www\.)\S+|\S+\.(com|org|net|jpg|jpeg|png)\b")
_NON_WORD = re.compile(r"[^a-z\s-]+")
_HYPHENS = re.compile(r"(^|\s)-+|-+(\s|$)")

# CaSED's list of words that describe the medium, not the content, plus stock-photo boilerplate
_MEDIUM = (
    "image photo picture pic logo illustration drawing painting stock vector icon clipart "
    "clip art background wallpaper close closeup close-up view shot frame render rendering "
    "sketch cartoon graphic design template poster print thumbnail file screenshot"
).split()
STOP_WORDS = frozenset(_MEDIUM) | FUNCTION_WORDS
# vic's default_vocab_transform: the words dropped, the tags kept
REFERENCE_DROP_WORDS = (
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
)
REFERENCE_TAGS = frozenset({"NN", "NNS", "NNP", "NNPS", "JJ", "JJR", "JJS", "VBG", "VBN"})

_IRREGULAR = {
    "people": "person",
    "men": "man",
    "women": "woman",
    "children": "child",
    "mice": "mouse",
    "feet": "foot",
    "teeth": "tooth",
    "geese": "goose",
    "oxen": "ox",
    "dice": "die",
    "leaves": "leaf",
    "knives": "knife",
    "wives": "wife",
    "lives": "life",
    "wolves": "wolf",
    "halves": "half",
    "shelves": "shelf",
    "calves": "calf",
    "loaves": "loaf",
    "thieves": "thief",
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


# -- the reference pipeline -------------------------------------------------------------------
_ANGLE = re.compile(r"<[^>]+>")
_HTTP = re.compile(r"http\S+")
_SPECIAL = re.compile(r"[^\w\s\-.'&]")
_EXTENSION = re.compile(r"\.\w+")
_SEPARATOR = re.compile(r"[_\-]")
_NON_ALPHA = re.compile(r"[^a-zA-Z\s]")


@lru_cache(maxsize=1)
def _inflect() -> Any:
    import inflect

    return inflect.engine()


@lru_cache(maxsize=65536)
def _reference_singular(word: str) -> str:
    """inflect's singular for words ending in "s" but not in -ss/-us/-is/-ies/-oes."""
    if not word.endswith("s") or word.endswith(("ss", "us", "is", "ies", "oes")):
        return word
    return _inflect().singular_noun(word) or word


def _reference_filtered(
    captions: Sequence[str], min_chars: int, drop: Sequence[str], min_count: int
) -> list[str]:
    """The reference's words before tagging, in text order (repeats kept)."""
    text = _ANGLE.sub("", " ".join(captions))
    text = _HTTP.sub("", text)
    text = _SPECIAL.sub("", text)
    text = _EXTENSION.sub("", text)
    text = _SEPARATOR.sub(" ", text)
    text = " ".join(w for w in text.split() if len(w) >= min_chars)
    words = _NON_ALPHA.sub("", text).lower().split()
    words = [_reference_singular(w) for w in words]
    dropped = set(drop)
    words = [w for w in words if w not in dropped]
    counts = Counter(words)
    top = max(counts.values(), default=0)
    need = top if min_count > top else min_count
    return [w for w in words if counts[w] >= need]


def reference_words(
    captions: Sequence[str],
    tagger: Tagger,
    *,
    min_count: int = 2,
    min_chars: int = 3,
    drop: Sequence[str] = REFERENCE_DROP_WORDS,
    tags: frozenset[str] = REFERENCE_TAGS,
) -> list[str]:
    """vic's candidate words for one image's captions, most frequent first (ties by word)."""
    words = _reference_filtered(captions, min_chars, drop, min_count)
    if not words:
        return []
    kept = [w for w, t in zip(words, tagger(words), strict=True) if penn_tag(w, t) in tags]
    counts = Counter(kept)
    return sorted(counts, key=lambda w: (-counts[w], w))


# -- extraction -------------------------------------------------------------------------------
@dataclass
class CandidateExtractor:
    """Callable: captions of one image -> candidate names, most frequent first.

    style : "reference" (vic's pipeline, single words; default) or "phrases" (zsvl's earlier
        word-and-phrase extractor).
    min_count : reference: times a word occurs in the joined captions (2); phrases: captions a
        term occurs in.
    max_words : longest noun phrase kept by "phrases" (1 = single words only).
    min_chars : shorter words are dropped (3).
    stop_words : words never used (None: the reference's 12 medium words, or :data:`STOP_WORDS`
        for "phrases").
    tagger : "auto" (spaCy with an English pipeline, else TextBlob, else the heuristic),
        "spacy", "textblob", "heuristic", or a callable tokens -> tags (Penn or coarse).
    spacy_model : the spaCy pipeline package tried by "auto" and "spacy".
    max_candidates : keep at most this many per image (None: all).
    """

    style: str = "reference"
    min_count: int = 2
    max_words: int = 3
    min_chars: int = 3
    stop_words: frozenset[str] | None = None
    tagger: Any = "auto"
    spacy_model: str = "en_core_web_sm"
    max_candidates: int | None = None

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise InvalidParameterError(f"style must be one of {STYLES}. Got {self.style!r}.")
        if self.min_count < 1 or self.max_words < 1:
            raise InvalidParameterError("min_count and max_words must be >= 1.")
        self.tagger_name_, self._tag = get_tagger(
            self.tagger or "auto", spacy_model=self.spacy_model
        )
        if self.stop_words is None:
            self.stop_words = (
                frozenset(REFERENCE_DROP_WORDS) if self.style == "reference" else STOP_WORDS
            )
        self._seen: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}

    def terms(self, caption: str) -> set[str]:
        """The distinct candidate terms of one caption ("phrases" style)."""
        tokens, tags = self._tagged(caption)
        stop_words = self.stop_words
        assert stop_words is not None  # __post_init__ fills in the default
        out: set[str] = set()
        run: list[int] = []
        for i, (tok, tag) in enumerate(zip(tokens, tags, strict=True)):
            good = tag in ("NOUN", "ADJ") and tok not in stop_words and len(tok) >= self.min_chars
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
            tags = [coarse_tag(t) for t in self._tag(raw)]
            tokens = [
                singularize(t) if tag == "NOUN" else t for t, tag in zip(raw, tags, strict=True)
            ]
            if len(self._seen) > 200_000:
                self._seen.clear()
            self._seen[caption] = (tuple(tokens), tuple(tags))
        seen_tokens, seen_tags = self._seen[caption]
        return list(seen_tokens), seen_tags

    def __call__(self, captions: Sequence[str]) -> list[str]:
        if self.style == "reference":
            assert self.stop_words is not None  # __post_init__ fills in the default
            names = reference_words(
                captions,
                self._tag,
                min_count=self.min_count,
                min_chars=self.min_chars,
                drop=sorted(self.stop_words),
            )
            return names[: self.max_candidates] if self.max_candidates else names
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
