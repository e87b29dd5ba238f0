"""Tolerant parsing of LLM answers: bullet, dash and numbered lists, and JSON when it was asked for.

Every parser returns a list that may be empty; an empty list means "unparsable" and the caller
decides (re-ask once, then raise or record the failure). Nothing here drops an answer silently
without the caller seeing an empty result.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

__all__ = ["parse_list", "parse_json", "parse_pairs", "clean_item", "MentionFinder"]

# "- x", "* x", "• x", "– x", "1. x", "1) x", "(1) x", "a) x"
_BULLET = re.compile(r"^\s*(?:[-*•‣◦–—+]|\(?\d{1,3}[.)]|\(?[a-z][.)])\s+(?P<item>.+)$")
_FENCE = re.compile(r"```(?:json|JSON)?\s*(?P<body>.*?)```", re.S)
_PREAMBLE = re.compile(r"(:\s*$)|^(q|a|question|answer)\s*:", re.I)
_LEAD = re.compile(r"^(?:\*\*|__)(.+?)(?:\*\*|__)(?=\s*[:\-–]|$)")


def clean_item(item: str) -> str:
    """Strip markup, quotes, surrounding space and trailing periods from one list item."""
    item = item.strip().replace("**", "").replace("__", "")
    item = item.strip().strip("\"'`“”‘’").strip()
    item = re.sub(r"\s+", " ", item)
    return item.rstrip(" .;,")


def _dedupe(items: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for item in items:
        key = item.lower()
        if item and key not in seen:
            seen.add(key)
            out.append(item)
    return out


def parse_json(text: str) -> Any:
    """The first JSON value in ``text`` (inside a code fence or bare), or None."""
    candidates = [m.group("body") for m in _FENCE.finditer(text)] + [text]
    for candidate in candidates:
        candidate = candidate.strip()
        pairs = sorted((("[", "]"), ("{", "}")), key=lambda oc: _first(candidate, oc[0]))
        for opener, closer in pairs:
            start, end = candidate.find(opener), candidate.rfind(closer)
            if start == -1 or end <= start:
                continue
            try:
                return json.loads(candidate[start : end + 1])
            except json.JSONDecodeError:
                continue
    return None


def _first(text: str, char: str) -> int:
    pos = text.find(char)
    return len(text) if pos == -1 else pos


def _json_strings(value: Any) -> list[str] | None:
    """A list of strings from ``["a", ...]`` or ``{"anything": ["a", ...]}``; else None."""
    if isinstance(value, dict) and len(value) == 1:
        value = next(iter(value.values()))
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def parse_list(text: str | None, *, json_ok: bool = True) -> list[str]:
    """Items of a list answer: bullets, dashes or numbers (or a JSON list of strings).

    Lines that start with a bullet are the items; without any bulleted line, the answer's
    non-empty lines are taken when there are at least two and none reads as a preamble (a line
    ending with ':' or a 'Q:'/'A:' line). Items are cleaned (:func:`clean_item`) and
    de-duplicated case-insensitively, in order. Returns [] when nothing can be read.
    """
    if not text or not text.strip():
        return []
    if json_ok and ("[" in text or "{" in text):
        strings = _json_strings(parse_json(text))
        if strings is not None:
            return _dedupe([clean_item(s) for s in strings])
    lines = [line for line in text.splitlines() if line.strip()]
    bulleted = [m.group("item") for m in map(_BULLET.match, lines) if m]
    if bulleted:
        return _dedupe([clean_item(_LEAD.sub(r"\1", b)) for b in bulleted])
    plain = [line.strip() for line in lines if not _PREAMBLE.search(line.strip())]
    if len(plain) >= 2 and len(plain) == len(lines):
        return _dedupe([clean_item(p) for p in plain])
    return []


def parse_pairs(text: str | None) -> list[tuple[str, str, str]]:
    """(attribute, description of the first class, of the second) triples of a pairwise answer.

    Accepts a JSON list of objects with ``attribute`` and two descriptions (keys ``first`` and
    ``second``, or any two other string fields in order), a JSON object ``{"attribute": [d1,
    d2]}``, or lines ``- attribute: first | second``. Returns [] when nothing can be read.
    """
    if not text or not text.strip():
        return []
    value = _pair_entries(parse_json(text))
    out = [t for t in map(_pair_entry, value) if t is not None]
    if out:
        return out
    for line in text.splitlines():
        m = _BULLET.match(line)
        body = m.group("item") if m else line
        attr, sep, rest = body.partition(":")
        first, bar, second = rest.partition("|")
        if sep and bar and first.strip() and second.strip():
            out.append((clean_item(attr), clean_item(first), clean_item(second)))
    return out


def _pair_entries(value: Any) -> list[Any]:
    """The list of per-attribute entries inside a parsed JSON answer."""
    if isinstance(value, list):
        return value
    if not isinstance(value, dict):
        return []
    if {"attribute", "first", "second"} & set(value):
        return [value]
    if len(value) == 1 and isinstance(next(iter(value.values())), list):
        inner = next(iter(value.values()))
        if inner and isinstance(inner[0], dict):
            return inner
    return [
        {"attribute": key, "first": v[0], "second": v[1]}
        for key, v in value.items()
        if isinstance(v, list) and len(v) == 2
    ]


def _pair_entry(entry: Any) -> tuple[str, str, str] | None:
    if not isinstance(entry, dict):
        return None
    attr = entry.get("attribute") or entry.get("attr_type") or entry.get("attr") or ""
    if "first" in entry and "second" in entry:
        first, second = entry["first"], entry["second"]
    elif isinstance(entry.get("prompt_pair"), list) and len(entry["prompt_pair"]) == 2:
        first, second = entry["prompt_pair"]
    else:
        rest = [v for k, v in entry.items() if k not in ("attribute", "attr_type", "attr")]
        if len(rest) != 2:
            return None
        first, second = rest
    if not all(isinstance(v, str) and v.strip() for v in (first, second)):
        return None
    return clean_item(str(attr)) or "attribute", clean_item(first), clean_item(second)


def _tokens(text: str) -> tuple[str, ...]:
    return tuple(re.findall(r"[a-z0-9]+", text.lower().replace("_", " ")))


class MentionFinder:
    """Finds where a text names a class of a set, as whole words (case, ``_`` and punctuation
    ignored): ``MentionFinder(["tree frog", "frog"]).others("unlike a frog", own=0) == [1]``.

    A mention inside a mention of the text's own class does not count ("tree frog" does not name
    "frog" when the text is about the tree frog). One pass over the text's words, so checking every
    descriptor of a 1000-class set stays fast.
    """

    def __init__(self, names: Sequence[str]) -> None:
        self._by_first: dict[str, list[tuple[tuple[str, ...], int]]] = {}
        for label, name in enumerate(names):
            toks = _tokens(name)
            if toks:
                self._by_first.setdefault(toks[0], []).append((toks, label))

    def others(self, text: str, own: int) -> list[int]:
        """Labels other than ``own`` that ``text`` names, in order of first mention."""
        toks = _tokens(text)
        hits: list[tuple[int, int, int]] = []  # (start, end, label)
        for i, tok in enumerate(toks):
            for phrase, label in self._by_first.get(tok, ()):
                if toks[i : i + len(phrase)] == phrase:
                    hits.append((i, i + len(phrase), label))
        own_spans = [(s, e) for s, e, label in hits if label == own]
        out: list[int] = []
        for s, e, label in hits:
            inside = any(a <= s and e <= b for a, b in own_spans)
            if label != own and not inside and label not in out:
                out.append(label)
        return out
