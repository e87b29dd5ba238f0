"""Argument conventions shared by every ``zsvl`` subcommand.

- **Lists**: one value per shell word, ``--classes cat dog "tree frog"``, ``--shots 0 1 2``.
  Options whose values are names or numbers that never hold a comma (``--methods``,
  ``--shots``, ``--seeds``, ``--datasets``) also accept commas, ``--shots 0,1,2``
  (:class:`ListAction`); free text (class names, query texts) is taken verbatim.
- **Output**: ``--quiet`` (``-q``) silences progress bars and summary lines, ``--json`` prints
  machine-readable JSON on stdout; both are accepted before or after the subcommand.
- **Errors**: one line on stderr, ``zsvl <command>: error: ...``, exit status 2.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["ListAction", "positive_int", "add_output_flags", "merge_output_flags", "leaf_parsers"]


class ListAction(argparse.Action):
    """``nargs="+"`` whose values may also be comma-separated; each item goes through
    ``convert`` (default str). ``--shots 0 1 2`` == ``--shots 0,1,2`` == ``--shots 0,1 2``."""

    def __init__(
        self,
        option_strings: list[str],
        dest: str,
        *,
        convert: Callable[[str], Any] = str,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("nargs", "+")
        super().__init__(option_strings, dest, **kwargs)
        self.convert = convert

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        items = [part.strip() for value in values for part in str(value).split(",")]
        out = []
        for item in items:
            if not item:
                continue
            try:
                out.append(self.convert(item))
            except (TypeError, ValueError):
                kind = getattr(self.convert, "__name__", "value")
                parser.error(f"argument {option_string}: expected {kind} values, got {item!r}")
        if not out:
            parser.error(f"argument {option_string}: expected at least one value")
        setattr(namespace, self.dest, out)


def positive_int(text: str) -> int:
    """argparse type: an int >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value}")
    return value


def leaf_parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """Every parser that runs a command (subcommands of subcommands included)."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield parser
        return
    for action in subs:
        for child in dict.fromkeys(action.choices.values()):
            yield from leaf_parsers(child)


def add_output_flags(parser: argparse.ArgumentParser) -> None:
    """``--quiet``/``-q`` and ``--json`` on the main parser and on every command, so both
    ``zsvl --json models`` and ``zsvl models --json`` work; read them with
    ``args.quiet`` / ``args.json`` after :func:`merge_output_flags`."""
    parser.add_argument(
        "-q",
        "--quiet",
        dest="quiet_global",
        action="store_true",
        help="no progress bars or summary lines on stderr",
    )
    parser.add_argument(
        "--json", dest="json_global", action="store_true", help="machine-readable JSON on stdout"
    )
    for leaf in leaf_parsers(parser):
        for flags, dest, text in (
            (("-q", "--quiet"), "quiet", "no progress on stderr"),
            (("--json",), "json", "print JSON on stdout"),
        ):
            taken = [f for f in flags if f in leaf._option_string_actions]
            if taken:  # the command defines it already (its own --json): keep that one
                continue
            leaf.add_argument(*flags, dest=dest, action="store_true", help=text)


def merge_output_flags(args: argparse.Namespace) -> argparse.Namespace:
    """Set ``args.quiet`` and ``args.json`` from the flags given before or after the command."""
    args.quiet = bool(getattr(args, "quiet", False) or getattr(args, "quiet_global", False))
    args.json = bool(getattr(args, "json", False) or getattr(args, "json_global", False))
    return args
