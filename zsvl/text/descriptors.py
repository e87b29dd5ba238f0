"""The descriptor store: per-class descriptions and pairwise differences, with the class order.

zsvl's JSON schema (``"format": "zsvl-descriptors"``)::

    {"format": "zsvl-descriptors", "version": 1,
     "classes": ["name 0", "name 1", ...],              # label order, explicit
     "descriptors": [["...", ...], ["...", ...], ...],  # one list per class, same order
     "pairs": [{"classes": [i, j], "names": [a, b],     # i < j
                "attributes": [{"attribute": "ear shape", "descriptions": [d_i, d_j]}, ...]}],
     "provenance": {"source": "llm", "style": "cbd", "model": ..., "prompts": [...], ...}}

Files in the wild (CBD/CuPL ``{class: [...]}``, FuDD ``{"i_j": {...}}``) are read by
:mod:`zsvl.text.importers`, which checks them against a class list.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from zsvl._atomic import atomic_write_text
from zsvl.classes import ClassSet, as_classset
from zsvl.errors import InvalidParameterError

__all__ = ["PairAttribute", "DescriptorSet", "FORMAT", "load_descriptors", "packaged_descriptors"]

FORMAT = "zsvl-descriptors"
VERSION = 1

PairKey = tuple[int, int]


@dataclass(frozen=True)
class PairAttribute:
    """One attribute that tells classes i < j apart, described once for each."""

    attribute: str  # what differs, e.g. "ear shape"
    first: str  # how class i (the lower label) shows it
    second: str  # how class j shows it


@dataclass(frozen=True)
class DescriptorSet:
    """Descriptors aligned with an explicit class order, pairwise differences and provenance.

    classes : ClassSet, label order.
    descriptors : one tuple of descriptor strings per class (may be empty for a class).
    pairs : {(i, j) with i < j: tuple of PairAttribute}.
    provenance : where the texts came from (LLM model, prompt ids, date, source file, ...).
    """

    classes: ClassSet
    descriptors: tuple[tuple[str, ...], ...]
    pairs: Mapping[PairKey, tuple[PairAttribute, ...]] = field(default_factory=dict)
    provenance: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", as_classset(self.classes))
        descriptors = tuple(tuple(str(d) for d in ds) for ds in self.descriptors)
        if len(descriptors) != len(self.classes):
            raise InvalidParameterError(
                f"A DescriptorSet needs one descriptor list per class: {len(self.classes)} "
                f"classes but {len(descriptors)} lists."
            )
        object.__setattr__(self, "descriptors", descriptors)
        pairs = {}
        for (i, j), attrs in dict(self.pairs).items():
            i, j, attrs = int(i), int(j), tuple(attrs)
            if not (0 <= i < len(self.classes) and 0 <= j < len(self.classes)) or i == j:
                raise InvalidParameterError(
                    f"Pair ({i}, {j}) does not name two different labels of the "
                    f"{len(self.classes)} classes."
                )
            if i > j:
                i, j = j, i
                attrs = tuple(PairAttribute(a.attribute, a.second, a.first) for a in attrs)
            pairs[(i, j)] = attrs
        object.__setattr__(self, "pairs", pairs)
        object.__setattr__(self, "provenance", dict(self.provenance))

    @classmethod
    def from_lists(
        cls, classes: ClassSet | Sequence[str], descriptors: Sequence[Sequence[str]], **kwargs: Any
    ) -> DescriptorSet:
        return cls(as_classset(classes), tuple(tuple(d) for d in descriptors), **kwargs)

    def __len__(self) -> int:
        return len(self.classes)

    def __getitem__(self, key: int | str) -> tuple[str, ...]:
        """Descriptors of a class, by label or by name."""
        return self.descriptors[key if isinstance(key, int) else self.classes.index(key)]

    @property
    def empty_classes(self) -> list[str]:
        """Names of the classes with no descriptor."""
        return [n for n, ds in zip(self.classes.names, self.descriptors, strict=True) if not ds]

    def pair(self, a: int, b: int) -> list[tuple[str, str, str]]:
        """(attribute, description of a, description of b) for labels a != b; [] when unknown."""
        if a < b:
            return [(p.attribute, p.first, p.second) for p in self.pairs.get((a, b), ())]
        return [(p.attribute, p.second, p.first) for p in self.pairs.get((b, a), ())]

    def with_pairs(self, new: Mapping[PairKey, Iterable[PairAttribute]]) -> DescriptorSet:
        """A copy whose pairs are this set's plus ``new`` (``new`` wins on overlap)."""
        merged = dict(self.pairs)
        merged.update({k: tuple(v) for k, v in new.items()})
        return replace(self, pairs=merged)

    def align(self, classes: ClassSet | Sequence[str]) -> DescriptorSet:
        """The same descriptors re-ordered to ``classes`` (matched by name); pairs follow.

        Raises when a class of ``classes`` has no entry here: check the file with
        :func:`zsvl.text.importers.import_descriptors`, which reports what is missing.
        """
        target = as_classset(classes)
        if target.names == self.classes.names:
            return self
        index = {name: i for i, name in reversed(list(enumerate(self.classes.names)))}
        missing = [n for n in target.names if n not in index]
        if missing:
            raise InvalidParameterError(
                f"The descriptors hold no entry for {len(missing)} of the {len(target)} classes: "
                f"{missing[:10]}. Generate them, or import the file with a report "
                "(zsvl descriptors import) to see what is missing."
            )
        old = [index[n] for n in target.names]
        back = {o: k for k, o in enumerate(old)}
        pairs = {}
        for (i, j), attrs in self.pairs.items():
            if i in back and j in back:
                pairs[(back[i], back[j])] = attrs
        return DescriptorSet(
            target, tuple(self.descriptors[o] for o in old), pairs, self.provenance
        )

    def to_dict(self) -> dict[str, Any]:
        """The zsvl JSON schema (see the module docstring)."""
        out: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "classes": list(self.classes.names),
            "descriptors": [list(ds) for ds in self.descriptors],
            "pairs": [
                {
                    "classes": [i, j],
                    "names": [self.classes.names[i], self.classes.names[j]],
                    "attributes": [
                        {"attribute": a.attribute, "descriptions": [a.first, a.second]}
                        for a in attrs
                    ],
                }
                for (i, j), attrs in sorted(self.pairs.items())
            ],
            "provenance": dict(self.provenance),
        }
        if self.classes.aliases:
            out["aliases"] = [list(a) for a in self.classes.aliases]
        return out

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, where: str = "the descriptor data"
    ) -> DescriptorSet:
        if data.get("format") != FORMAT:
            raise InvalidParameterError(
                f'{where} is not a zsvl descriptor file (no "format": "{FORMAT}"). Import '
                "CBD/CuPL/FuDD files with zsvl.text.importers.import_descriptors."
            )
        if int(data.get("version", 0)) > VERSION:
            raise InvalidParameterError(
                f"{where} has schema version {data.get('version')}; this zsvl reads up to "
                f"{VERSION}. Upgrade zsvl."
            )
        try:
            aliases = tuple(tuple(a) for a in data.get("aliases", ()))
            classes = ClassSet(tuple(data["classes"]), aliases)
            pairs = {
                (int(p["classes"][0]), int(p["classes"][1])): tuple(
                    PairAttribute(a["attribute"], a["descriptions"][0], a["descriptions"][1])
                    for a in p["attributes"]
                )
                for p in data.get("pairs", ())
            }
            return cls(
                classes,
                tuple(tuple(d) for d in data["descriptors"]),
                pairs,
                data.get("provenance", {}),
            )
        except (KeyError, IndexError, TypeError) as exc:
            raise InvalidParameterError(f"{where} is malformed: {exc!r}.") from exc

    def save(self, path: str | Path) -> Path:
        """Write the zsvl JSON schema atomically; returns the path."""
        return atomic_write_text(path, _format(self.to_dict()))

    @classmethod
    def load(cls, path: str | Path) -> DescriptorSet:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise InvalidParameterError(f"Descriptor file {str(path)!r} does not exist.") from exc
        except ValueError as exc:
            raise InvalidParameterError(f"Descriptor file {path} is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise InvalidParameterError(f"Descriptor file {path} must hold a JSON object.")
        return cls.from_dict(data, where=str(path))


def _format(data: dict[str, Any]) -> str:
    """JSON with one class, one descriptor list and one pair per line (diff-friendly)."""

    def dump(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False)

    parts = []
    for key, value in data.items():
        if isinstance(value, list) and value and key != "aliases":
            body = ",\n  ".join(dump(v) for v in value)
            parts.append(f" {dump(key)}: [\n  {body}\n ]")
        elif isinstance(value, dict):
            parts.append(
                f" {dump(key)}: "
                + json.dumps(value, indent=1, ensure_ascii=False).replace("\n", "\n ")
            )
        else:
            parts.append(f" {dump(key)}: {dump(value)}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def packaged_descriptors(name: str) -> Path:
    """Path of a descriptor file shipped in ``prompts/descriptors/`` (``name`` without .json)."""
    from zsvl.paths import prompts_dir

    folder = prompts_dir() / "descriptors"
    path = folder / f"{name.removesuffix('.json')}.json"
    if not path.is_file():
        known = sorted(p.stem for p in folder.glob("*.json"))
        raise InvalidParameterError(f"No packaged descriptor file {name!r}. Known: {known}.")
    return path


def load_descriptors(source: DescriptorSet | str | Path) -> DescriptorSet:
    """A DescriptorSet from itself, a zsvl JSON file, or the name of a packaged file."""
    if isinstance(source, DescriptorSet):
        return source
    path = Path(source)
    if not path.is_file() and isinstance(source, str) and not source.endswith(".json"):
        path = packaged_descriptors(source)
    return DescriptorSet.load(path)
