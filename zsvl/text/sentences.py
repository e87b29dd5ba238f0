"""CBD sentence building: the reference's sentences, or the same with its defects fixed.

``"{c}, {which} {d}."`` becomes "hummingbird, which has a long thin beak." Two styles:

- ``"reference"`` reproduces classify_by_description_release (``make_descriptor_sentence`` and
  ``load_gpt_descriptions``) character for character: the descriptor is used as given, and the
  clause is chosen by the descriptor's first *letters* (``str.startswith``): "which is" for
  anything starting with "a" (so "antennae" becomes "which is antennae"), "which" before
  "has"/"often"/"typically"/"may"/"can" (also "canvas", "mayfly"), "which is" before "used",
  "which has" otherwise. The reference ends the text with "." on ImageNet only
  (:data:`CBD_TEMPLATE`) and with nothing elsewhere (:data:`CBD_REFERENCE_TEMPLATE`); a class
  without descriptors gets the one descriptor "" ("tench, which has ").
- ``"default"`` applies the same word lists to the descriptor's first *word* (lower-cased), so
  "antennae" gets "which has"; lemminflect's lexicon finds verbs: "which" before a third-person
  verb ("resembles a cat", "usually has"), "which is" before a participle or adjective that a
  preposition follows ("made of wood", "red in colour"). It cleans the descriptor without
  dropping content: whitespace, bullets, quotes and trailing
  periods go; a pronoun opener ("It is a seabird.", "They have long legs") becomes the clause
  itself ("which is a seabird", "which has long legs": lemminflect puts the verb in the third
  person singular); noun subjects are kept ("the bands are of different widths" stays whole).
  A text that would run past CLIP's context is cut inside the descriptor, never in the class name.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from zsvl.errors import InvalidParameterError

__all__ = [
    "CBD_TEMPLATE",
    "CBD_REFERENCE_TEMPLATE",
    "WAFFLE_TEMPLATE",
    "CONCEPT_PREFIX",
    "SENTENCE_STYLES",
    "clean_descriptor",
    "which_clause",
    "reference_which_clause",
    "descriptor_sentence",
    "build_sentences",
    "approx_tokens",
]

CBD_TEMPLATE = "{c}, {which} {d}."  # Menon and Vondrick (ImageNet); zsvl's default everywhere
CBD_REFERENCE_TEMPLATE = "{c}, {which} {d}"  # the reference on every dataset but ImageNet
WAFFLE_TEMPLATE = "A photo of a {c}, {which} {d}."  # Roth et al. (their default label texts)
CONCEPT_PREFIX = "A photo of a {concept}: "  # WaffleCLIP's high-level concept
CONTEXT_TOKENS = 75  # CLIP's 77 minus the start and end tokens
SENTENCE_STYLES = ("default", "reference")

# the reference's word lists, in its order of precedence
_IS_WORDS = ("a", "an")
_BARE_WORDS = ("has", "often", "typically", "may", "can")
_USED_WORDS = ("used",)

_BULLET = re.compile(r"^\s*(?:[-*•–—+]|\d{1,3}[.)])\s+")
_PRONOUN = re.compile(
    r"^(?:it|they|he|she)\s+(?:(?P<adv>[a-z]+ly|often)\s+)?(?P<verb>[a-z]+)\b\s*", re.I
)
_CONTRACTION = re.compile(r"^(?:it's|it’s|they're|they’re)\s+", re.I)
_MODALS = frozenset("can could may might must shall should will would".split())
_TOKEN = re.compile(r"\w+|[^\w\s]")


@lru_cache(maxsize=4096)
def _third_person(verb: str) -> str | None:
    """The third person singular of ``verb`` ("have" -> "has", "are" -> "is"), or None when the
    word is not a verb (lemminflect's lexicon)."""
    from lemminflect import getAllLemmas, getInflection

    word = verb.lower()
    if word in _MODALS:
        return word
    lemmas = getAllLemmas(word).get("VERB") or getAllLemmas(word).get("AUX")
    if not lemmas:
        return None
    forms = getInflection(lemmas[0], tag="VBZ")
    if word in ("was", "were"):
        return "was"
    return forms[0] if forms else word


def _pronoun_clause(text: str) -> str | None:
    """ "is a seabird" for "It is a seabird" (the pronoun is the class itself); else None."""
    m = _CONTRACTION.match(text)
    if m:
        return "is " + text[m.end() :]
    m = _PRONOUN.match(text)
    if m:
        verb = _third_person(m["verb"])
        if verb is not None:
            adverb = f"{m['adv']} " if m["adv"] else ""
            return f"{adverb}{verb} {text[m.end() :]}".strip()
    return None


def clean_descriptor(text: str) -> str:
    """Strip whitespace, bullets, quotes and trailing periods; turn a pronoun opener into its verb
    ("It is a seabird." -> "a seabird", "They have long legs" -> "has long legs"); lower-case
    the first letter unless the word is an acronym. Nothing else is dropped."""
    text = _BULLET.sub("", " ".join(str(text).split())).strip().strip("\"'`“”").strip()
    text = text.rstrip(" .;,!").strip()
    text = _pronoun_clause(text) or text
    if text.lower().startswith(("is a ", "is an ")):  # "which is" comes back from the article
        text = text[3:]
    if len(text) > 1 and text[0].isupper() and not text[1].isupper():
        text = text[0].lower() + text[1:]
    return text


def reference_which_clause(descriptor: str) -> str:
    """The reference's clause, chosen by the first letters of ``descriptor`` as given."""
    if descriptor.startswith(_IS_WORDS):
        return "which is"
    if descriptor.startswith(_BARE_WORDS):
        return "which"
    if descriptor.startswith(_USED_WORDS):
        return "which is"
    return "which has"


@lru_cache(maxsize=8192)
def _verb_form(word: str) -> str | None:
    """ "VBZ" for a word lemminflect knows only as a third-person verb ("has", "resembles"),
    "VBN" for a past participle without a noun reading ("made", "attached"), "ADJ" for a word
    with an adjective reading ("available", "red"), None otherwise."""
    from lemminflect import getAllLemmas, getInflection

    readings = getAllLemmas(word)
    verbs = readings.get("VERB") or readings.get("AUX")
    if "NOUN" in readings or "PROPN" in readings:
        return "ADJ" if "ADJ" in readings else None  # "red": the preposition decides
    if (
        verbs
        and not set(readings) - {"VERB", "AUX"}
        and (word in getInflection(verbs[0], tag="VBZ") or word in ("is", "was"))
    ):
        return "VBZ"
    if verbs and word in getInflection(verbs[0], tag="VBN"):
        return "VBN"
    return "ADJ" if "ADJ" in readings else None


def _only_adverb(word: str) -> bool:
    from lemminflect import getAllLemmas

    return set(getAllLemmas(word)) == {"ADV"}


_PREPOSITIONS = frozenset(
    "by of in with to from on for at into onto like as over under around through near than".split()
)


def _predicative(words: list[str], i: int) -> str | None:
    """The clause for a verb at ``words[i]``: "which" for a third-person form ("has",
    "resembles") or a modal, "which is" for a past participle followed by a preposition or
    nothing ("made of wood", "worn by") or an adjective followed by a preposition ("available
    in"), None otherwise ("coiled shape", "hovering flight")."""
    word = words[i]
    if word in _MODALS:
        return "which"
    form = _verb_form(word) if word.isalpha() else None
    if form == "VBZ":
        return "which"
    if form == "VBN" and (i + 1 == len(words) or words[i + 1] in _PREPOSITIONS):
        return "which is"
    if form == "ADJ" and i + 1 < len(words) and words[i + 1] in _PREPOSITIONS:
        return "which is"
    return None


def which_clause(descriptor: str) -> str:
    """The reference's word lists on the first *word*: "which is" before "a"/"an"/"used",
    "which" before "has"/"often"/"typically"/"may"/"can", "which has" otherwise. Verbs found by
    lemminflect (first word, or second after an adverb) also decide: "which" before a
    third-person verb ("is a seabird", "resembles a cat", "usually has stripes"), "which is"
    before a past participle used predicatively ("made of wood", "usually worn by")."""
    words = [w.lower().strip(",;:.") for w in descriptor.split()[:3]]
    first = words[0] if words else ""
    if first in _IS_WORDS or first in _USED_WORDS:
        return "which is"
    if first in _BARE_WORDS:
        return "which"
    clause = _predicative(words, 0) if words else None
    if clause is None and len(words) > 1 and first.isalpha() and _only_adverb(first):
        clause = _predicative(words, 1)
    return clause or "which has"


def approx_tokens(text: str) -> int:
    """A lower bound on CLIP's BPE token count: words and punctuation marks."""
    return len(_TOKEN.findall(text))


def _check_style(style: str) -> None:
    if style not in SENTENCE_STYLES:
        raise InvalidParameterError(f"style must be one of {SENTENCE_STYLES}. Got {style!r}.")


def descriptor_sentence(
    classname: str,
    descriptor: str,
    *,
    template: str = CBD_TEMPLATE,
    concept: str | None = None,
    max_tokens: int = CONTEXT_TOKENS,
    style: str = "default",
) -> str:
    """One text for CLIP from a class name and a descriptor.

    template : may use ``{c}`` (class name, underscores as spaces), ``{d}`` (the descriptor),
        ``{which}`` and ``{concept}``. With ``concept`` and no ``{concept}`` in the template,
        :data:`CONCEPT_PREFIX` is put in front.
    style : "default" (cleaned descriptor, :func:`which_clause`, cut to ``max_tokens``) or
        "reference" (descriptor as given, :func:`reference_which_clause`, never cut).
    """
    _check_style(style)
    if "{d}" not in template and "{c}" not in template:
        raise InvalidParameterError(
            f"A descriptor template needs '{{d}}' and/or '{{c}}'. Got {template!r}."
        )
    if concept and "{concept}" not in template:
        template = CONCEPT_PREFIX + template
    if "{concept}" in template and not concept:
        raise InvalidParameterError(f"Template {template!r} uses {{concept}}; pass concept=...")
    name = classname.replace("_", " ")
    if style == "reference":
        return _fill(template, name, reference_which_clause(descriptor), descriptor, concept)
    name = name.strip()
    # a descriptor spliced into a sentence is cleaned; a whole sentence ("{d}", CuPL) is kept
    spliced = "{c}" in template or "{which}" in template
    words = (clean_descriptor(descriptor) if spliced else descriptor).split()
    while True:
        d = " ".join(words)
        text = _fill(template, name, which_clause(d), d, concept)
        if approx_tokens(text) <= max_tokens or len(words) <= 1:
            return text
        words = words[:-1]


def _fill(template: str, name: str, which: str, d: str, concept: str | None) -> str:
    return (
        template.replace("{c}", name)
        .replace("{which}", which)
        .replace("{concept}", concept or "")
        .replace("{d}", d)
    )


def build_sentences(
    classnames: Sequence[str],
    descriptors: Sequence[Sequence[str]],
    *,
    template: str = CBD_TEMPLATE,
    concept: str | None = None,
    max_tokens: int = CONTEXT_TOKENS,
    style: str = "default",
) -> tuple[list[str], list[int]]:
    """All texts, class-major, and the label of each: (texts, owners), both of length sum(M_c).

    With ``style="reference"`` a class without descriptors gets the reference's single text for
    the descriptor "" ("tench, which has "); in the default style it gets no text here (the
    caller decides its fallback).
    """
    _check_style(style)
    texts: list[str] = []
    owners: list[int] = []
    for label, (name, items) in enumerate(zip(classnames, descriptors, strict=True)):
        if style == "reference" and len(items) == 0:
            items = [""]
        for item in items:
            texts.append(
                descriptor_sentence(
                    name,
                    item,
                    template=template,
                    concept=concept,
                    max_tokens=max_tokens,
                    style=style,
                )
            )
            owners.append(label)
    return texts, owners
