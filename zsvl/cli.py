"""The ``zsvl`` command line: argument parsing and one library call per subcommand."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import warnings
from collections.abc import Sequence

from zsvl._version import __version__
from zsvl.cli_args import add_output_flags, merge_output_flags
from zsvl.errors import ZsvlError

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The ``zsvl`` parser: every command, then ``--quiet``/``--json`` before or after each."""
    parser = _build_commands()
    add_output_flags(parser)
    return parser


def _build_commands() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zsvl", description="Training-free zero-shot image classification with CLIP models."
    )
    parser.add_argument("--version", action="version", version=f"zsvl {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)

    from zsvl.cli_classify import add_classify_parsers

    add_classify_parsers(sub)  # classify | fit

    p = sub.add_parser("models", help="list known model specs")
    p.add_argument("--aliases-only", action="store_true", help="only zsvl's own names")
    p.set_defaults(func=_cmd_models)

    from zsvl.cli_descriptors import add_descriptor_parsers

    add_descriptor_parsers(sub)  # descriptors generate | import

    from zsvl.cli_index import add_index_parsers

    add_index_parsers(sub)  # index build | info | search

    from zsvl.cli_eval import add_eval_parsers

    add_eval_parsers(sub)  # eval | report | demo

    from zsvl.serve.server import add_serve_parser

    add_serve_parser(sub)  # serve (needs the serve extra only when run)
    return parser


def _cmd_models(args: argparse.Namespace) -> int:
    from zsvl.models.registry import list_models

    names = list_models(pretrained=not args.aliases_only)
    print(json.dumps(names) if args.json else "\n".join(names))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``zsvl`` command; returns the exit status (0 ok, 1 some inputs failed, 2 error)."""
    parser = build_parser()
    args = merge_output_flags(parser.parse_args(argv))
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    from zsvl._progress import set_quiet

    set_quiet(args.quiet)
    with _third_party_quiet(args.verbose):
        try:
            return args.func(args)
        except ZsvlError as exc:
            print(f"zsvl {args.command}: error: {_one_line(exc)}", file=sys.stderr)
            return 2
        except OSError as exc:  # the file system said no (permissions, disk full, ...)
            print(f"zsvl {args.command}: error: {_one_line(exc)}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print(f"zsvl {args.command}: interrupted", file=sys.stderr)
            return 130


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


@contextlib.contextmanager
def _third_party_quiet(verbose: bool):  # noqa: ANN202 - a context manager
    """Keep other libraries' progress bars and warnings out of the way while a command runs.

    Hugging Face / transformers bars are switched off (unless the user set the variables);
    warnings raised from zsvl's own code print as one line; other libraries' warnings show only
    with ``--verbose``.
    """
    for name, value in (
        ("HF_HUB_DISABLE_PROGRESS_BARS", "1"),
        ("TRANSFORMERS_VERBOSITY", "error"),
        ("TOKENIZERS_PARALLELISM", "false"),
    ):
        os.environ.setdefault(name, value)
    package = os.path.dirname(os.path.abspath(__file__))

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001, ANN202
        if os.path.abspath(filename).startswith(package):
            print(f"zsvl: warning: {message}", file=sys.stderr)
        elif verbose:
            print(f"{category.__name__} ({filename}:{lineno}): {message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = show
        yield


if __name__ == "__main__":
    sys.exit(main())
