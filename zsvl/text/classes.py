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
            what = "is a folder, not a file" if path.is_dir() else "does not exist"
            raise InvalidParameterError(f"Class file {str(path)!r} {what}.")
        try:
            text = path.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InvalidParameterError(
                f"Class file {path} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at "
                f"offset {exc.start}); save it as UTF-8 (e.g. iconv -f latin1 -t utf-8)."
            ) from None
        if path.suffix.lower() == ".json":
            try:
                data = json.loads(text)
            except ValueError as exc:
                raise InvalidParameterError(
                    f"Class file {path} is not valid JSON ({exc}); it must hold a list of "
                    'class names, ["cat", "dog"], or {"classes": [...]}.'
                ) from None
            names = data.get("classes", data) if isinstance(data, dict) else data
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise InvalidParameterError(
                    f"{path} must hold a JSON list of class names (strings), "
                    '["cat", "dog"], or {"classes": [...]}.'
                )
        else:
            lines = [line.strip() for line in text.splitlines()]
            names = [line for line in lines if line and not line.startswith("#")]
        if not names:
            raise InvalidParameterError(f"Class file {path} holds no class names.")
        return cls(tuple(names))


def as_classset(classes: ClassSet | Sequence[str]) -> ClassSet:
    """Accept a ClassSet or any sequence of names (a single string is refused, not split)."""
    if isinstance(classes, ClassSet):
        return classes
    if isinstance(classes, str):
        raise InvalidParameterError(
            f"classes must be a list of names, not one string ({classes!r}); wrap it in a list."
        )
    return ClassSet(tuple(classes))
