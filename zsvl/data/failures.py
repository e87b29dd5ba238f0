"""What happens to an input that cannot be read: the policy and the record of one failure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["ImageFailure", "OnError"]

OnError = Literal["raise", "skip"]  # stop at the first unreadable input, or report it and go on


@dataclass(frozen=True)
class ImageFailure:
    """One input that could not be turned into an embedding."""

    index: int  # position of the input in the caller's (expanded) list
    source: str  # file path, or a short description of an in-memory input
    error: str  # what went wrong, in words
