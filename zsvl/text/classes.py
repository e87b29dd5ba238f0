"""ClassSet: the ordered class list that travels with every classifier, descriptor file and result."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from zsvl.errors import InvalidParameterError

__all__ = ["ClassSet", "as_classset"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClassSet:
    """Ordered class names (label i is ``names[i]``) with optional aliases per class."""

    names: tuple[str, ...]  # display names, in label order
    aliases: tuple[tuple[str, ...], ...] = ()  # per class, extra names (may be empty)

    def __post_init__(self) -> None:
        names = tuple(self.names)
        if not names:
            raise InvalidParameterError("A ClassSet needs at least one class name. Got none.")
        bad = [n for n in names if not isinstance(n, str) or not n.strip()]
        if bad:
            raise InvalidParameterError(f"Class names must be non-empty strings. Got {bad[:5]!r}.")
        object.__setattr__(self, "names", tuple(n.strip() for n in names))
        if self.aliases and len(self.aliases) != len(names):
            raise InvalidParameterError(
                f"aliases must hold one tuple per class ({len(names)}). Got {len(self.aliases)}."
            )
        dupes = [n for n, k in Counter(self.names).items() if k > 1]
        if dupes:
            logger.warning("Class names repeat (labels stay distinct by index): %s", dupes[:10])

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __getitem__(self, index: int) -> str:
        return self.names[index]

    def index(self, name: str) -> int:
        """Label of ``name`` (or of one of its aliases)."""
        if name in self.names:
            return self.names.index(name)
        for label, alias in enumerate(self.aliases):
            if name in alias:
                return label
        raise InvalidParameterError(f"{name!r} is not one of the {len(self)} classes.")

    @classmethod
    def from_file(cls, path: str | Path) -> ClassSet:
        """One class per line (blank lines and '#' comments ignored), or a JSON list of names."""
        path = Path(path)
        if not path.is_file():
            raise InvalidParameterError(f"Class file {str(path)!r} does not exist.")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidParameterError(
                f"Class file {str(path)!r} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at "
                f"offset {exc.start}); save it as UTF-8."
            ) from None
        if path.suffix == ".json":
            try:
                data = json.loads(text)
            except ValueError as exc:
                raise InvalidParameterError(
                    f"Class file {str(path)!r} is not valid JSON ({exc}); give a JSON list of "
                    "names, or a .txt file with one name per line."
                ) from None
            names = data.get("classes", data) if isinstance(data, dict) else data
            if not isinstance(names, list):
                raise InvalidParameterError(f"{path} must hold a JSON list of class names.")
            return cls(tuple(names))
        lines = [line.strip() for line in text.splitlines()]
        return cls(tuple(line for line in lines if line and not line.startswith("#")))


def as_classset(classes: ClassSet | Sequence[str]) -> ClassSet:
    """Accept a ClassSet or any sequence of names (a single string is refused, not split)."""
    if isinstance(classes, ClassSet):
        return classes
    if isinstance(classes, str):
        raise InvalidParameterError(
            f"classes must be a list of names, not one string ({classes!r}); wrap it in a list."
        )
    return ClassSet(tuple(classes))
