"""CBD sentence building with the reference code's defects fixed.

``"{c}, {which} {d}."`` becomes "hummingbird, which has a long thin beak." The ``{which}`` rule
looks at the descriptor's first *word* ("which is" before an article, "which" before a verb,
"which has" otherwise); the reference looked at its first *letter*, so "antennae" became "which is
antennae". Descriptors are cleaned first (bullets, "It is ..." openers, trailing periods), and a
sentence that would run past the text context is cut inside the descriptor, never inside the
class name.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from zsvl.errors import InvalidParameterError

__all__ = [
    "CBD_TEMPLATE",
    "WAFFLE_TEMPLATE",
    "CONCEPT_PREFIX",
    "clean_descriptor",
    "which_clause",
    "descriptor_sentence",
    "build_sentences",
    "approx_tokens",
]

CBD_TEMPLATE = "{c}, {which} {d}."  # Menon and Vondrick
WAFFLE_TEMPLATE = "A photo of a {c}, which has {d}."  # Roth et al.
CONCEPT_PREFIX = "A photo of a {concept}: "  # WaffleCLIP's high-level concept
CONTEXT_TOKENS = 75  # CLIP's 77 minus the start and end tokens

_OPENER = re.compile(
    r"^(?:it|they|this|these|the \w+|this \w+)\s+(?P<verb>is|are|has|have|was|were|can be|"
    r"may be|will be|would be|tends to be)\s+", re.I,
)
_ITS = re.compile(r"^(?:it's|they're|there is|there are)\s+", re.I)
_BULLET = re.compile(r"^\s*(?:[-*•–—+]|\d{1,3}[.)])\s+")
_ARTICLE = {"a", "an", "one"}
_VERB = {
    "has", "have", "is", "are", "often", "typically", "usually", "may", "can", "sometimes",
    "generally", "tends", "looks", "resembles", "consists", "contains", "appears", "lives",
    "grows", "features", "shows", "comes", "includes", "points", "stands",
}
_PARTICIPLE = {
    "used", "made", "found", "located", "covered", "shaped", "known", "seen", "attached",
    "mounted", "painted", "coloured", "colored", "filled", "surrounded", "decorated", "taller",
    "larger", "smaller", "wider", "longer", "shorter", "darker", "lighter", "brighter",
}
_TOKEN = re.compile(r"\w+|[^\w\s]")


def clean_descriptor(text: str) -> str:
    """Strip bullets, sentence openers ("It is", "They have", "The bird has"), quotes, trailing
    periods and extra spaces; lower-case the first letter unless the word is an acronym."""
    text = _BULLET.sub("", " ".join(str(text).split())).strip().strip("\"'`“”").strip()
    text = _ITS.sub(lambda m: "is " if m[0].lower().startswith(("it", "they")) else "", text)
    text = _OPENER.sub(_opener_verb, text).rstrip(" .;,!").strip()
    if text.lower().startswith(("is a ", "is an ", "is the ")):
        text = text[3:]
    if len(text) > 1 and text[0].isupper() and not text[1].isupper():
        text = text[0].lower() + text[1:]
    return text


def _opener_verb(m: re.Match[str]) -> str:
    """What is left of "It has"/"They are": the verb when it says something ("has", "is")."""
    verb = m["verb"].lower()
    if verb in ("has", "have"):
        return "has "
    if verb in ("is", "are", "was", "were"):
        return "is "
    return f"{verb} "  # "can be", "may be", "tends to be"


def which_clause(descriptor: str) -> str:
    """"which is", "which" or "which has", chosen by the descriptor's first word."""
    words = descriptor.split()
    first = words[0].lower().strip(",;:") if words else ""
    if first in _ARTICLE or first in _PARTICIPLE:
        return "which is"
    if first in _VERB:
        return "which"
    if re.search(r"\bin colou?r$", descriptor, re.I):
        return "which is"
    return "which has"


def approx_tokens(text: str) -> int:
    """A lower bound on CLIP's BPE token count: words and punctuation marks."""
    return len(_TOKEN.findall(text))


def descriptor_sentence(
    classname: str, descriptor: str, *, template: str = CBD_TEMPLATE, concept: str | None = None,
    max_tokens: int = CONTEXT_TOKENS,
) -> str:
    """One text for CLIP from a class name and a descriptor.

    template : may use ``{c}`` (class name, underscores as spaces), ``{d}`` (cleaned descriptor),
        ``{which}`` (see :func:`which_clause`) and ``{concept}``. With ``concept`` and no
        ``{concept}`` in the template, :data:`CONCEPT_PREFIX` is put in front.
    max_tokens : descriptors are cut word by word until the text fits (approximately).
    """
    if "{d}" not in template and "{c}" not in template:
        raise InvalidParameterError(
            f"A descriptor template needs '{{d}}' and/or '{{c}}'. Got {template!r}."
        )
    if concept and "{concept}" not in template:
        template = CONCEPT_PREFIX + template
    if "{concept}" in template and not concept:
        raise InvalidParameterError(f"Template {template!r} uses {{concept}}; pass concept=...")
    name = classname.replace("_", " ").strip()
    # a descriptor spliced into a sentence is cleaned; a whole sentence ("{d}", CuPL) is kept
    spliced = "{c}" in template or "{which}" in template
    words = (clean_descriptor(descriptor) if spliced else descriptor).split()
    while True:
        d = " ".join(words)
        text = (
            template.replace("{c}", name).replace("{which}", which_clause(d))
            .replace("{concept}", concept or "").replace("{d}", d)
        )
        if approx_tokens(text) <= max_tokens or len(words) <= 1:
            return text
        words = words[:-1]


def build_sentences(
    classnames: Sequence[str], descriptors: Sequence[Sequence[str]], *,
    template: str = CBD_TEMPLATE, concept: str | None = None, max_tokens: int = CONTEXT_TOKENS,
) -> tuple[list[str], list[int]]:
    """All texts, class-major, and the label of each: (texts, owners), both of length sum(M_c)."""
    texts: list[str] = []
    owners: list[int] = []
    for label, (name, items) in enumerate(zip(classnames, descriptors, strict=True)):
        for item in items:
            texts.append(descriptor_sentence(
                name, item, template=template, concept=concept, max_tokens=max_tokens))
            owners.append(label)
    return texts, owners
