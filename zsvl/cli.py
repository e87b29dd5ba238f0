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

    p = sub.add_parser("eval", help="run an evaluation suite (coop11, toy or a TOML file)")
    p.add_argument("--suite", default="toy", help="coop11, toy, or a suite TOML file")
    p.add_argument("--data-root", default=None, help="folder holding the datasets (CoOp layout)")
    p.add_argument("--model", default="toy", help="model spec (default: %(default)s)")
    p.add_argument("--methods", type=_csv_list, default=None, help="e.g. zeroshot,tip,gda")
    p.add_argument("--shots", type=_int_list, default=None, help="e.g. 0,1,2,4,8,16")
    p.add_argument("--seeds", type=_int_list, default=None, help="e.g. 1,2,3")
    p.add_argument("--datasets", type=_csv_list, default=None, help="a subset of the suite")
    p.add_argument("--out", default="results", help="results folder (records are resumable)")
    p.add_argument("--check-only", action="store_true", help="only check the datasets")
    p.set_defaults(func=_cmd_eval)

    p = sub.add_parser("report", help="tables and plots from a results folder")
    p.add_argument("results", help="the --out folder of zsvl eval")
    p.add_argument("--format", choices=("md", "csv", "html"), default="md")
    p.add_argument("--out", default=None, help="write to this file instead of stdout")
    p.set_defaults(func=_cmd_report)

    from zsvl.cli_descriptors import add_descriptor_parsers

    add_descriptor_parsers(sub)  # descriptors generate | import

    from zsvl.cli_index import add_index_parsers

    add_index_parsers(sub)  # index build | info | search

    from zsvl.serve.server import add_serve_parser

    add_serve_parser(sub)  # serve (needs the serve extra only when run)

    p = sub.add_parser("demo", help="every method on the built-in toy suite, offline, + report")
    p.add_argument("--out", default="results/toy", help="results folder (default: %(default)s)")
    p.add_argument("--model", default="toy")
    p.add_argument("--methods", type=_csv_list, default=None, help="default: all registered")
    p.set_defaults(func=_cmd_demo)
    return parser


def _cmd_models(args: argparse.Namespace) -> int:
    from zsvl.models.registry import list_models

    names = list_models(pretrained=not args.aliases_only)
    print(json.dumps(names) if args.json else "\n".join(names))
    return 0


def _csv_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _int_list(text: str) -> list[int]:
    try:
        return [int(part) for part in _csv_list(text)]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from exc


def _cmd_eval(args: argparse.Namespace) -> int:
    from zsvl.eval.evaluate import check_suite, evaluate

    overrides = {
        "methods": args.methods,
        "shots": args.shots,
        "seeds": args.seeds,
        "datasets": args.datasets,
    }
    if args.check_only:
        reports = check_suite(args.suite, data_root=args.data_root, **overrides)
        print("\n".join(r.summary() for r in reports))
        return 0 if all(r.ok for r in reports) else 1
    records = evaluate(
        args.suite, model=args.model, data_root=args.data_root, out=args.out, **overrides
    )
    failed = [r for r in records if r.get("status") != "ok"]
    print(
        f"{len(records)} runs written to {args.out} ({len(failed)} failed); "
        f"`zsvl report {args.out}` makes the table."
    )
    return 1 if failed else 0


def _cmd_report(args: argparse.Namespace) -> int:
    from zsvl.eval.report import render_report, write_report

    if args.out:
        print(f"wrote {write_report(args.results, args.out, args.format)}")
    else:
        print(render_report(args.results, args.format), end="")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from zsvl.eval.demo import run_toy_demo

    table, html, seconds = run_toy_demo(args.out, model=args.model, methods=args.methods)
    print(f"Toy suite, model {args.model!r}: top-1 accuracy (%), test splits\n")
    print(table)
    print(f"HTML report with plots: {html}  ({seconds:.0f} s)")
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
    for name, value in (("HF_HUB_DISABLE_PROGRESS_BARS", "1"), ("TRANSFORMERS_VERBOSITY", "error"),
                        ("TOKENIZERS_PARALLELISM", "false")):
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
