"""CoOp-style split files: ``{"train": [[relative_path, label, classname], ...], "val", "test"}``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from zsvl.classes import ClassSet
from zsvl.errors import InvalidParameterError

__all__ = ["Split", "read_split_file"]

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Split:
    """One split of a dataset: absolute image paths and integer labels, in file order."""

    name: str  # "train", "val" or "test"
    paths: list[Path]  # image files
    labels: list[int]  # label of each image, an index into ``classes``
    classes: ClassSet  # class names in label order

    def __len__(self) -> int:
        return len(self.paths)


def read_split_file(
    split_file: str | Path, image_root: str | Path | None = None
) -> dict[str, Split]:
    """Read a split_zhou_*.json style file; paths are relative to ``image_root`` (default: its folder).

    Class names are taken from the entries (label -> classname); a label with two names, a gap in
    the labels or a malformed entry is an error that names the file and the entry.
    """
    split_file = Path(split_file)
    root = Path(image_root) if image_root is not None else split_file.parent
    try:
        data = json.loads(split_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InvalidParameterError(f"Cannot read split file {split_file}: {exc}") from exc
    names: dict[int, str] = {}
    raw: dict[str, list[tuple[Path, int]]] = {}
    for split in SPLITS:
        entries = data.get(split, [])
        raw[split] = []
        for pos, entry in enumerate(entries):
            if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[1], int)):
                raise InvalidParameterError(
                    f"{split_file}: entry {pos} of {split!r} must be [relative_path, label, "
                    f"classname]. Got {entry!r}."
                )
            rel, label, name = entry
            if names.setdefault(label, name) != name:
                raise InvalidParameterError(
                    f"{split_file}: label {label} is named both {names[label]!r} and {name!r}."
                )
            raw[split].append((root / rel, label))
    if not names:
        raise InvalidParameterError(f"{split_file} holds no entries in {', '.join(SPLITS)}.")
    missing = sorted(set(range(max(names) + 1)) - set(names))
    if missing:
        raise InvalidParameterError(
            f"{split_file}: labels {missing[:10]} never occur; labels must be 0..C-1."
        )
    classes = ClassSet(tuple(names[i] for i in range(len(names))))
    return {
        split: Split(split, [p for p, _ in rows], [lab for _, lab in rows], classes)
        for split, rows in raw.items()
    }
