"""Importers for descriptor files in the wild, checked against a class list.

- CBD: ``{"class name": ["descriptor", ...]}`` (Menon and Vondrick);
- CuPL: ``{"class name": ["sentence", ...]}`` (Pratt et al.), same shape, sentences;
- FuDD: ``{"i_j": {"classes": [i, j], "prompt_pairs": [{"attr_type": ..., "prompt_pair":
  [desc_i, desc_j]}]}}`` keyed by label indices.

JSON key order is never taken as label order: give the class list (it is only inferred from the
keys, with a warning, when none is given). Names match exactly, else up to case, ``_`` and spaces;
two classes that would then match one key never share it (a collision in the report). The
:class:`ImportReport` lists missing, extra, duplicate (repeated JSON keys, repeated descriptors),
colliding and empty entries, and malformed ones.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zsvl.classes import ClassSet, as_classset
from zsvl.errors import InvalidParameterError
from zsvl.text.descriptors import FORMAT, DescriptorSet, PairAttribute
from zsvl.text.sentences import clean_descriptor

__all__ = ["ImportReport", "import_descriptors", "import_cbd", "import_cupl", "import_fudd"]

logger = logging.getLogger(__name__)

SCHEMAS = ("auto", "zsvl", "cbd", "cupl", "fudd")
_PAIR_KEY = re.compile(r"^(\d+)_(\d+)$")


@dataclass
class ImportReport:
    """What an import found wrong. ``ok`` is True when nothing below was found."""

    source: str
    schema: str
    classes: int = 0  # size of the class list checked against
    missing: list[str] = field(default_factory=list)  # classes with no entry in the file
    extra: list[str] = field(default_factory=list)  # keys that name no class
    duplicate_keys: list[str] = field(default_factory=list)  # keys repeated in the JSON object
    duplicate_descriptors: dict[str, int] = field(default_factory=dict)  # class -> repeats dropped
    empty: list[str] = field(default_factory=list)  # classes (or pairs) with an empty list
    invalid: list[str] = field(default_factory=list)  # malformed entries, with the reason
    collisions: list[str] = field(default_factory=list)  # names that match each other loosely
    cleaned: int = 0  # descriptors rewritten ("It is a seabird." -> "a seabird")
    pairs: int = 0  # pairs read (FuDD)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (
            self.missing
            or self.extra
            or self.duplicate_keys
            or self.empty
            or self.invalid
            or self.collisions
        )

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()} | {"ok": self.ok}

    def __str__(self) -> str:
        lines = [f"{self.source} ({self.schema}): checked against {self.classes} classes"]
        for name in ("missing", "extra", "duplicate_keys", "empty", "invalid", "collisions"):
            items = getattr(self, name)
            if items:
                shown = ", ".join(repr(x) for x in items[:8]) + (" ..." if len(items) > 8 else "")
                lines.append(f"  {name.replace('_', ' ')}: {len(items)} ({shown})")
        if self.duplicate_descriptors:
            lines.append(
                f"  repeated descriptors dropped: {sum(self.duplicate_descriptors.values())} in "
                f"{len(self.duplicate_descriptors)} classes"
            )
        if self.cleaned:
            lines.append(f"  descriptors cleaned (openers, trailing periods): {self.cleaned}")
        if self.pairs:
            lines.append(f"  pairs: {self.pairs}")
        lines += [f"  note: {n}" for n in self.notes]
        lines.append("  OK" if self.ok else "  PROBLEMS FOUND (see above)")
        return "\n".join(lines)


def _read_json(source: str | Path | dict) -> tuple[Any, list[str], str]:
    """(data, keys repeated in any JSON object, name of the source)."""
    if isinstance(source, dict):
        return source, [], "<dict>"
    path = Path(source)
    dupes: list[str] = []

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        counts = Counter(k for k, _ in pairs)
        dupes.extend(k for k, n in counts.items() if n > 1)
        out: dict[str, Any] = {}
        for k, v in pairs:  # keep every list of a repeated key: merge, do not overwrite
            if k in out and isinstance(out[k], list) and isinstance(v, list):
                out[k] = out[k] + v
            else:
                out[k] = v
        return out

    try:
        data = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=hook)
    except FileNotFoundError as exc:
        raise InvalidParameterError(f"Descriptor file {str(path)!r} does not exist.") from exc
    except ValueError as exc:
        raise InvalidParameterError(f"{path} is not valid JSON: {exc}") from exc
    return data, dupes, str(path)


def _norm(name: str) -> str:
    return " ".join(name.replace("_", " ").lower().split())


def _match_keys(data: dict[str, Any], classes: ClassSet, report: ImportReport) -> list[str | None]:
    """The file key of each class: its exact name, else the one key equal up to case, ``_`` and
    spaces (then an alias the same way). A key claimed by two classes goes to the one that names
    it exactly, or to none; both cases are reported as collisions, never shared silently."""
    loose: dict[str, list[str]] = {}
    for k in data:
        loose.setdefault(_norm(k), []).append(k)
    keys: list[str | None] = []
    for label, name in enumerate(classes.names):
        key = name if name in data else None
        aliases = classes.aliases[label] if classes.aliases else ()
        for candidate in (name, *aliases):
            if key is not None:
                break
            found = loose.get(_norm(candidate), [])
            if len(found) > 1:
                report.collisions.append(
                    f"keys {found} all match class {name!r} (up to case, '_' and spaces); "
                    "none was used"
                )
                break
            key = candidate if candidate in data else (found[0] if found else None)
        keys.append(key)
    claims: dict[str, list[int]] = {}
    for label, key in enumerate(keys):
        if key is not None:
            claims.setdefault(key, []).append(label)
    for key, labels in claims.items():
        names = list(dict.fromkeys(classes.names[lab] for lab in labels))
        if len(names) < 2:
            continue  # one name repeated in the class list: noted below, as before
        winner = key if key in names else None
        for lab in labels:
            if classes.names[lab] != winner:
                keys[lab] = None
        kept = f"kept for {winner!r} only" if winner is not None else "used for none"
        report.collisions.append(
            f"classes {names} differ only in case, '_' or spaces and all match the key {key!r}; "
            f"its descriptors were {kept}"
        )
    return keys


def _class_lists(
    data: dict[str, Any], classes: ClassSet, report: ImportReport, *, clean: bool
) -> tuple[tuple[str, ...], ...]:
    """Per-class descriptor tuples from a ``{class: [...]}`` mapping, filling the report."""
    used: set[str] = set()
    out: list[tuple[str, ...]] = []
    for name, key in zip(classes.names, _match_keys(data, classes, report), strict=True):
        if key is None:
            report.missing.append(name)
            out.append(())
            continue
        used.add(key)
        value = data[key]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            kind = type(value).__name__
            report.invalid.append(f"{key!r}: expected a list of strings, got {kind}")
            out.append(())
            continue
        items = []
        for raw in value:
            text = clean_descriptor(raw) if clean else " ".join(raw.split())
            report.cleaned += int(clean and text != raw.strip())
            if text:
                items.append(text)
        unique = list(dict.fromkeys(items))
        if len(unique) < len(items):
            report.duplicate_descriptors[name] = len(items) - len(unique)
        if not unique:
            report.empty.append(name)
        out.append(tuple(unique))
    report.extra = [k for k in data if k not in used]
    repeated = [n for n, c in Counter(classes.names).items() if c > 1]
    if repeated:
        report.notes.append(
            f"class names repeat in the class list ({repeated[:5]}); name-keyed files give each "
            "repeat the same descriptors"
        )
    return tuple(out)


def _resolve_classes(data: dict[str, Any], classes: Any, report: ImportReport) -> ClassSet:
    if classes is not None:
        return classes if isinstance(classes, ClassSet) else _classes_from(classes)
    logger.warning(
        "No class list given for %s: using the file's key order as label order. JSON key order "
        "is not a label order; pass the dataset's ordered class names.",
        report.source,
    )
    report.notes.append("no class list given: label order taken from the file's key order")
    return ClassSet(tuple(data))


def _classes_from(classes: Any) -> ClassSet:
    if isinstance(classes, str | Path) and Path(classes).is_file():
        return ClassSet.from_file(classes)
    return as_classset(classes)


def _import_named(source: Any, classes: Any, schema: str) -> tuple[DescriptorSet, ImportReport]:
    data, dupes, name = _read_json(source)
    report = ImportReport(name, schema, duplicate_keys=dupes)
    if not isinstance(data, dict):
        raise InvalidParameterError(f"{name}: a {schema} file is a JSON object {{class: [...]}}.")
    cs = _resolve_classes(data, classes, report)
    report.classes = len(cs)
    lists = _class_lists(data, cs, report, clean=schema == "cbd")
    prov = {"source": f"import:{schema}", "file": name, "style": schema}
    return DescriptorSet(cs, lists, {}, prov), report


def import_cbd(source: Any, classes: Any = None) -> tuple[DescriptorSet, ImportReport]:
    """Read a CBD ``{class: [descriptor, ...]}`` file (path or dict); descriptors are cleaned."""
    return _import_named(source, classes, "cbd")


def import_cupl(source: Any, classes: Any = None) -> tuple[DescriptorSet, ImportReport]:
    """Read a CuPL ``{class: [sentence, ...]}`` file (path or dict); sentences kept whole."""
    return _import_named(source, classes, "cupl")


def import_fudd(source: Any, classes: Any) -> tuple[DescriptorSet, ImportReport]:
    """Read a FuDD pair file ``{"i_j": {"classes": [i, j], "prompt_pairs": [...]}}``.

    ``classes`` (required: the file holds label indices only) gives names and order.
    """
    data, dupes, name = _read_json(source)
    if classes is None:
        raise InvalidParameterError(f"{name}: FuDD files are keyed by label; pass classes=[...].")
    cs = _classes_from(classes)
    report = ImportReport(name, "fudd", classes=len(cs), duplicate_keys=dupes)
    if not isinstance(data, dict):
        raise InvalidParameterError(f'{name}: a FuDD file is a JSON object {{"i_j": {{...}}}}.')
    pairs: dict[tuple[int, int], tuple[PairAttribute, ...]] = {}
    for key, entry in data.items():
        pair = _fudd_entry(key, entry, len(cs), report)
        if pair is None:
            continue
        (i, j), attrs = pair
        if (min(i, j), max(i, j)) in pairs:
            report.duplicate_keys.append(key)
            continue
        if not attrs:
            report.empty.append(key)
        if i > j:
            i, j, attrs = j, i, tuple(PairAttribute(a.attribute, a.second, a.first) for a in attrs)
        pairs[(i, j)] = attrs
    report.pairs = len(pairs)
    total = len(cs) * (len(cs) - 1) // 2
    report.notes.append(f"{len(pairs)} of the {total} class pairs are described")
    prov = {"source": "import:fudd", "file": name, "style": "fudd"}
    empty = tuple(() for _ in cs.names)
    return DescriptorSet(cs, empty, pairs, prov), report


def _fudd_entry(
    key: str, entry: Any, n: int, report: ImportReport
) -> tuple[tuple[int, int], tuple[PairAttribute, ...]] | None:
    m = _PAIR_KEY.match(str(key))
    if m is None or not isinstance(entry, dict):
        report.invalid.append(f"{key!r}: expected key 'i_j' with an object value")
        return None
    i, j = int(m.group(1)), int(m.group(2))
    listed = entry.get("classes")
    if listed is not None and [int(x) for x in listed] != [i, j]:
        report.invalid.append(f"{key!r}: its 'classes' {listed} disagree with the key")
        return None
    if not (0 <= i < n and 0 <= j < n) or i == j:
        report.extra.append(key)
        return None
    attrs = []
    for k, item in enumerate(entry.get("prompt_pairs", [])):
        pair = item.get("prompt_pair") if isinstance(item, dict) else None
        if not (
            isinstance(pair, list)
            and len(pair) == 2
            and all(isinstance(p, str) and p.strip() for p in pair)
        ):
            report.invalid.append(f"{key!r}: prompt_pairs[{k}] is not two non-empty strings")
            continue
        attr = str(item.get("attr_type") or item.get("attribute") or "attribute")
        attrs.append(PairAttribute(attr, " ".join(pair[0].split()), " ".join(pair[1].split())))
    return (i, j), tuple(attrs)


def detect_schema(data: Any) -> str:
    """'zsvl', 'fudd' or 'cbd' (a ``{class: [...]}`` file) from the content of a parsed file."""
    if isinstance(data, dict) and data.get("format") == FORMAT:
        return "zsvl"
    if isinstance(data, dict) and any(
        isinstance(v, dict) and "prompt_pairs" in v for v in data.values()
    ):
        return "fudd"
    return "cbd"


def import_descriptors(
    source: str | Path | dict,
    classes: ClassSet | Sequence[str] | str | Path | None = None,
    *,
    schema: str = "auto",
) -> tuple[DescriptorSet, ImportReport]:
    """Read any supported descriptor file and check it against ``classes`` (names or a file)."""
    if schema not in SCHEMAS:
        raise InvalidParameterError(f"schema must be one of {SCHEMAS}. Got {schema!r}.")
    if schema == "auto":
        data = _read_json(source)[0]
        schema = detect_schema(data)
    if schema == "zsvl":
        data, dupes, name = _read_json(source)
        ds = DescriptorSet.from_dict(data, where=name)
        report = ImportReport(name, "zsvl", classes=len(ds.classes), duplicate_keys=dupes)
        if classes is not None:
            target = _classes_from(classes)
            report.missing = [n for n in target.names if n not in ds.classes.names]
            report.extra = [n for n in ds.classes.names if n not in target.names]
            report.classes = len(target)
            if not report.missing:
                ds = ds.align(target)
        report.empty = ds.empty_classes if ds.pairs == {} else []
        return ds, report
    importer = {"cbd": import_cbd, "cupl": import_cupl, "fudd": import_fudd}[schema]
    return importer(source, classes)
