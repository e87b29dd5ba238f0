"""Every evaluation method by name: the built-in ones registered, then looked up."""

from __future__ import annotations

import difflib

import zsvl.eval.methods  # noqa: F401 - registers the built-in methods
import zsvl.eval.methods_more  # noqa: F401 - and the base-to-new, retrieval and variant ones
from zsvl.errors import InvalidParameterError
from zsvl.eval.registry import REGISTERED, MethodEntry

__all__ = ["get_method", "method_names"]


def method_names() -> list[str]:
    """Every registered method, built-in ones first, in registration order."""
    return list(REGISTERED)


def get_method(name: str) -> MethodEntry:
    """The registered method ``name``; an unknown name fails with the closest matches."""
    if name not in REGISTERED:
        close = difflib.get_close_matches(name, list(REGISTERED), n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise InvalidParameterError(
            f"Unknown method {name!r}.{hint} Known methods: {', '.join(REGISTERED)}."
        )
    return REGISTERED[name]
