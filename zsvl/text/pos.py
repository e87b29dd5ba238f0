"""Part-of-speech taggers for candidate extraction: a list of tokens in, one tag per token out.

Taggers answer Penn Treebank tags (NN, NNS, JJ, VBG, ...), except :class:`HeuristicTagger`, which
answers coarse tags (NOUN, ADJ, VERB, ADV, OTHER); :func:`penn_tag` and :func:`coarse_tag` map
either kind to the other. Backends, in the order ``"auto"`` tries them:

- ``"spacy"``: a spaCy English pipeline installed as a package (``en_core_web_sm`` by default;
  spaCy's models are not on PyPI, so this is used only when the user has installed one);
- ``"textblob"``: TextBlob's pattern tagger, whose lexicon ships inside the PyPI package (no
  download, no network): the default where spaCy has no English pipeline;
- ``"heuristic"``: zsvl's dependency-free word lists and suffix rules (the last fallback).
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache

from zsvl.errors import InvalidParameterError

__all__ = [
    "Tagger",
    "TAGGERS",
    "get_tagger",
    "spacy_tagger",
    "textblob_tagger",
    "nltk_tagger",
    "HeuristicTagger",
    "penn_tag",
    "coarse_tag",
    "FUNCTION_WORDS",
]

logger = logging.getLogger(__name__)

Tagger = Callable[[Sequence[str]], Sequence[str]]
TAGGERS = ("auto", "spacy", "textblob", "heuristic")

FUNCTION_WORDS = frozenset(
    "a an the this that these those there here it its it's they them their he she his her we you "
    "your our my me i of in on at to from by with without into onto over under above below near "
    "next beside against behind between through across around along about for as and or but nor "
    "so yet if than then while when where which who whom whose what why how is are was were be "
    "been being am has have had having do does did doing can could will would shall should may "
    "might must not no nor very too also just only some any each every all both few many much "
    "more most other another such own same one two three four five six seven eight nine ten "
    "first second up down out off again further once".split()
)


def coarse_tag(tag: str) -> str:
    """NOUN, ADJ, VERB, ADV or OTHER for a Penn or coarse tag."""
    if tag.startswith("NN") or tag in ("NOUN", "PROPN"):
        return "NOUN"
    if tag.startswith("JJ") or tag == "ADJ":
        return "ADJ"
    if tag.startswith("VB") or tag == "VERB":
        return "VERB"
    if tag.startswith("RB") or tag == "ADV":
        return "ADV"
    return "OTHER"


def penn_tag(token: str, tag: str) -> str:
    """A Penn tag for a coarse one (NOUN -> NN or NNS, VERB -> VBG/VBN/VB by suffix)."""
    if tag == "NOUN":
        return "NNS" if token.endswith("s") else "NN"
    if tag == "ADJ":
        return "JJ"
    if tag == "VERB":
        return "VBG" if token.endswith("ing") else "VBN" if token.endswith("ed") else "VB"
    if tag == "ADV":
        return "RB"
    return tag if tag[:2].isupper() and tag != "OTHER" else "XX"


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
        if token in FUNCTION_WORDS:
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


def textblob_tagger() -> Tagger:
    """TextBlob's pattern tagger (Penn tags) on pre-split tokens; its lexicon ships in the
    package, so it works offline."""
    try:
        from textblob.en import tag
    except ImportError as exc:
        raise InvalidParameterError(
            "The 'textblob' tagger needs the textblob package: pip install textblob."
        ) from exc

    def run(tokens: Sequence[str]) -> list[str]:
        if not tokens:
            return []
        tags = [t for _, t in tag(" ".join(tokens), tokenize=False)]
        if len(tags) != len(tokens):  # a token with inner spaces: tag one by one
            tags = [tag(t, tokenize=False)[0][1] if t else "XX" for t in tokens]
        return tags

    return run


@lru_cache(maxsize=4)
def _spacy_pipeline(model: str):  # noqa: ANN202 - a spacy Language
    import spacy

    return spacy.load(model, exclude=["parser", "ner", "lemmatizer", "senter"])


def spacy_tagger(model: str = "en_core_web_sm") -> Tagger:
    """A spaCy pipeline's tagger (Penn tags in ``token.tag_``) on pre-split tokens."""
    try:
        nlp = _spacy_pipeline(model)
    except ImportError as exc:
        raise InvalidParameterError(
            "The 'spacy' tagger needs spaCy: pip install spacy, then an English pipeline."
        ) from exc
    except OSError as exc:
        raise InvalidParameterError(
            f"spaCy has no pipeline {model!r} installed; install one (python -m spacy download "
            f"{model}) or use tagger='textblob'."
        ) from exc
    from spacy.tokens import Doc

    def run(tokens: Sequence[str]) -> list[str]:
        doc = Doc(nlp.vocab, words=list(tokens))
        for _, component in nlp.pipeline:
            doc = component(doc)
        return [t.tag_ for t in doc]

    return run


def nltk_tagger() -> Tagger:
    """NLTK's averaged perceptron tagger (Penn tags); needs nltk and its tagger data installed
    locally (zsvl never downloads it)."""
    try:
        import nltk

        nltk.pos_tag(["test"])
    except (ImportError, LookupError) as exc:
        raise InvalidParameterError(
            "nltk_tagger() needs the nltk package and its 'averaged_perceptron_tagger' data "
            "installed locally; use tagger='textblob' otherwise."
        ) from exc

    def tag(tokens: Sequence[str]) -> list[str]:
        return [t for _, t in nltk.pos_tag(list(tokens))]

    return tag


def _spacy_ready(model: str) -> bool:
    return (
        importlib.util.find_spec("spacy") is not None
        and importlib.util.find_spec(model) is not None
    )


def get_tagger(
    name: str | Tagger = "auto", *, spacy_model: str = "en_core_web_sm"
) -> tuple[str, Tagger]:
    """(backend name, tagger). ``name`` is one of :data:`TAGGERS` or a callable (kept as is)."""
    if callable(name):
        return getattr(name, "__name__", type(name).__name__), name
    if name not in TAGGERS:
        raise InvalidParameterError(f"tagger must be one of {TAGGERS} or a callable. Got {name!r}.")
    if name == "spacy" or (name == "auto" and _spacy_ready(spacy_model)):
        return "spacy", spacy_tagger(spacy_model)
    if name == "textblob" or (name == "auto" and importlib.util.find_spec("textblob")):
        return "textblob", textblob_tagger()
    if name == "auto":
        logger.warning(
            "Neither spaCy (with %s) nor textblob is installed: candidate words are "
            "tagged by zsvl's heuristic rules.",
            spacy_model,
        )
    return "heuristic", HeuristicTagger()
