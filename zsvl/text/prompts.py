"""LLM prompt texts from ``prompts/llm/*.txt``: versioned, hashed, rendered into chat messages.

File layout: header lines ``# name: cbd``, ``# version: 1``, ``# answer: list|pairs|phrase`` and
free comments, then sections ``### system``, ``### user``, ``### assistant`` (the conversation, in
order), an optional ``### reask`` (the follow-up sent once when an answer cannot be parsed) and
``### phrase`` (a fragment, for ``concept.txt``). Placeholders: ``{c}`` (class), ``{a}`` and
``{b}`` (the two classes of a pair), ``{concept}``. The SHA-256 of the file is part of every
descriptor file's provenance, and the rendered text is part of every cache key, so a changed
prompt never reuses an old answer.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from zsvl.errors import InvalidParameterError
from zsvl.text.llm import Messages

__all__ = ["PromptTemplate", "load_prompt", "list_prompts"]

_ROLES = ("system", "user", "assistant")
_SECTION = re.compile(r"^### (\w+)\s*$")


@dataclass(frozen=True)
class PromptTemplate:
    """One prompt file, parsed."""

    name: str  # e.g. "cbd"
    version: str  # bumped by hand when the wording changes on purpose
    answer: str  # "list", "pairs" or "phrase": how answers are parsed
    sha256: str  # of the file's bytes
    messages: tuple[tuple[str, str], ...]  # (role, text) in order
    reask: str | None = None  # follow-up after an unparsable answer
    phrase: str | None = None  # a text fragment (concept.txt)

    @property
    def id(self) -> str:
        return f"{self.name}@v{self.version}"

    def provenance(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version, "sha256": self.sha256}

    def render(self, **fields: str) -> Messages:
        """The chat messages with ``{c}``/``{a}``/``{b}``/``{concept}`` filled in."""
        return [
            {"role": role, "content": _fill(text, fields, self.id)} for role, text in self.messages
        ]

    def reask_messages(self, messages: Messages, answer: str, **fields: str) -> Messages:
        """``messages`` + the unusable answer + the re-ask, for one more try."""
        text = self.reask or "Your answer could not be read. Answer again in the requested format."
        return [
            *messages,
            {"role": "assistant", "content": answer},
            {"role": "user", "content": _fill(text, fields, self.id)},
        ]


def _fill(text: str, fields: dict[str, str], where: str) -> str:
    for key, value in fields.items():
        text = text.replace("{" + key + "}", value)
    left = re.findall(r"\{(c|a|b|concept)\}", text)
    if left:
        raise InvalidParameterError(f"Prompt {where} needs a value for {{{left[0]}}}.")
    return text


def prompts_folder() -> Path:
    from zsvl.paths import prompts_dir

    return prompts_dir() / "llm"


def list_prompts() -> list[str]:
    return sorted(p.stem for p in prompts_folder().glob("*.txt"))


def load_prompt(name: str | Path) -> PromptTemplate:
    """A prompt by name (``"cbd"``, ``"fudd_pair"``, ...) or from a ``.txt`` file path."""
    path = Path(name)
    if not (path.suffix == ".txt" and path.is_file()):
        path = prompts_folder() / f"{name}.txt"
        if not path.is_file():
            raise InvalidParameterError(f"Unknown LLM prompt {name!r}. Known: {list_prompts()}.")
    raw = path.read_bytes()
    header: dict[str, str] = {}
    sections: list[tuple[str, list[str]]] = []
    for line in raw.decode("utf-8").splitlines():
        m = _SECTION.match(line)
        if m:
            sections.append((m.group(1), []))
        elif sections:
            sections[-1][1].append(line)
        elif line.startswith("#") and ":" in line:
            key, _, value = line[1:].partition(":")
            header[key.strip()] = value.strip()
    texts = [(role, "\n".join(lines).strip("\n")) for role, lines in sections]
    bad = [r for r, _ in texts if r not in (*_ROLES, "reask", "phrase")]
    if bad or "version" not in header:
        raise InvalidParameterError(
            f"{path}: needs a '# version: N' header and only ### sections {_ROLES}, reask, phrase;"
            f" found sections {[r for r, _ in texts]} and header {sorted(header)}."
        )
    extra = dict(texts)
    return PromptTemplate(
        name=header.get("name", path.stem),
        version=header["version"],
        answer=header.get("answer", "list"),
        sha256=hashlib.sha256(raw).hexdigest(),
        messages=tuple((r, t) for r, t in texts if r in _ROLES),
        reask=extra.get("reask"),
        phrase=extra.get("phrase"),
    )
