"""The ``zsvl eval``, ``zsvl report`` and ``zsvl demo`` subcommands (parsers and handlers)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from zsvl.cli_args import ListAction

__all__ = ["add_eval_parsers"]


def _quiet_flag(p: argparse.ArgumentParser) -> None:
    # SUPPRESS: a global --quiet (if the main parser has one) is not overwritten by this default
    p.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS,
        help="no progress bars or per-run lines on stderr",
    )


def add_eval_parsers(sub: Any) -> None:
    """Add ``eval``, ``report`` and ``demo`` to the subcommand parsers ``sub``."""
    p = sub.add_parser("eval", help="run an evaluation suite (coop11, toy or a TOML file)")
    p.add_argument("--suite", default="toy", help="coop11, toy, or a suite TOML file")
    p.add_argument("--data-root", default=None, help="folder holding the datasets (CoOp layout)")
    p.add_argument("--model", default="toy", help="model spec (default: %(default)s)")
    p.add_argument("--methods", action=ListAction, default=None, help="e.g. zeroshot tip gda")
    p.add_argument(
        "--shots", action=ListAction, convert=int, default=None, help="e.g. 0 1 2 4 8 16"
    )
    p.add_argument("--seeds", action=ListAction, convert=int, default=None, help="e.g. 1 2 3")
    p.add_argument("--datasets", action=ListAction, default=None, help="a subset of the suite")
    p.add_argument("--out", default="results", help="results folder (records are resumable)")
    p.add_argument("--check-only", action="store_true", help="only check the datasets")
    p.add_argument(
        "--retry-failed",
        action="store_true",
        help="redo runs whose record says the method failed (default: keep them)",
    )
    p.add_argument("--json", action="store_true", help="print the outcome as JSON on stdout")
    p.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help="spread the runs over a Ray cluster (HOST:PORT, 'auto'; no value: Ray's default)",
    )
    _quiet_flag(p)
    p.set_defaults(func=_cmd_eval)

    p = sub.add_parser("report", help="tables and plots from a results folder")
    p.add_argument("results", help="the --out folder of zsvl eval (or a folder above it)")
    p.add_argument("--format", choices=("md", "csv", "html"), default="md")
    p.add_argument("--out", default=None, help="write to this file instead of stdout")
    p.add_argument(
        "--method",
        default=None,
        help="HTML: the method whose per-class accuracy and confusion are shown",
    )
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("demo", help="every method on the built-in toy suite, offline, + report")
    p.add_argument("--out", default="results/toy", help="results folder (default: %(default)s)")
    p.add_argument("--model", default="toy")
    p.add_argument("--methods", action=ListAction, default=None, help="default: all registered")
    p.add_argument("--retry-failed", action="store_true", help="redo failed methods")
    _quiet_flag(p)
    p.set_defaults(func=_cmd_demo)


def _apply_quiet(args: argparse.Namespace) -> None:
    if getattr(args, "quiet", False):
        from zsvl._progress import set_quiet

        set_quiet()


def _cmd_eval(args: argparse.Namespace) -> int:
    from zsvl.eval.evaluate import check_suite, evaluate

    _apply_quiet(args)
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
    if args.ray is not None:
        from zsvl.distributed.eval import evaluate_on_ray as evaluate  # noqa: F811

        overrides["address"] = args.ray or None
    outcome = evaluate(
        args.suite,
        model=args.model,
        data_root=args.data_root,
        out=args.out,
        retry_failed=args.retry_failed,
        **overrides,
    )
    if args.json:
        print(
            json.dumps(
                {
                    "out": str(outcome.out),
                    "planned": len(outcome.planned),
                    "run_now": len(outcome.written),
                    "failed": [
                        {"run": spec.label, "error": None if rec is None else rec.get("error")}
                        for spec, rec in outcome.failed
                    ],
                },
                indent=2,
            )
        )
    else:
        print(outcome.summary(), file=sys.stdout if outcome.ok else sys.stderr)
    return 0 if outcome.ok else 1


def _cmd_report(args: argparse.Namespace) -> int:
    from zsvl.eval.report import render_report, write_report

    if args.out:
        print(f"wrote {write_report(args.results, args.out, args.format, method=args.method)}")
    else:
        print(render_report(args.results, args.format, method=args.method), end="")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from zsvl.eval.demo import run_toy_demo

    _apply_quiet(args)
    table, html, seconds, outcome = run_toy_demo(
        args.out, model=args.model, methods=args.methods, retry_failed=args.retry_failed
    )
    print(f"Toy suite, model {args.model!r}: top-1 accuracy (%), test splits\n")
    print(table)
    print(f"HTML report with plots: {html}  ({seconds:.0f} s)")
    if not outcome.ok:
        print(outcome.summary(), file=sys.stderr)
        return 1
    return 0
