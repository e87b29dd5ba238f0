"""The ``zsvl`` command line: argument parsing and one library call per subcommand."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from zsvl._version import __version__
from zsvl.errors import ZsvlError

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zsvl", description="Training-free zero-shot image classification with CLIP models."
    )
    parser.add_argument("--version", action="version", version=f"zsvl {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("classify", help="zero-shot classify image files or folders")
    p.add_argument("paths", nargs="+", help="image files or folders (searched recursively)")
    p.add_argument("--classes", nargs="+", default=None, help="class names")
    p.add_argument("--classes-file", default=None, help="file with one class name per line")
    p.add_argument("--model", default=None, help="model spec (default: ViT-B-32:laion2b_s34b_b79k)")
    p.add_argument("--templates", default=None, help="template set name or JSON file")
    p.add_argument("--top-k", type=int, default=5, help="classes listed per image")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: CUDA if present)")
    p.add_argument(
        "--on-error",
        choices=("skip", "raise"),
        default="skip",
        help="skip unreadable images and report them (default), or stop at the first",
    )
    p.add_argument("--json", action="store_true", help="print JSON records instead of a table")
    p.add_argument(
        "--descriptors",
        default=None,
        help="score with a descriptor file (zsvl schema or a packaged name) instead of templates",
    )
    p.add_argument(
        "--explain",
        type=int,
        nargs="?",
        const=3,
        default=None,
        metavar="N",
        help="show the N descriptors behind each prediction (needs --descriptors)",
    )
    p.add_argument("--vocabulary-free", action="store_true",
                   help="name each image without a class list (CaSED; needs --index)")
    p.add_argument("--index", default=None, help="caption index directory for --vocabulary-free")
    p.set_defaults(func=_cmd_classify)

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


def _cmd_classify(args: argparse.Namespace) -> int:
    from zsvl.api import DEFAULT_MODEL, classify
    from zsvl.text.classes import ClassSet

    if args.descriptors or args.explain is not None:
        from zsvl.cli_descriptors import classify_with_descriptors

        return classify_with_descriptors(args)
    if args.vocabulary_free or args.index:
        from zsvl.cli_index import classify_vocabulary_free

        return classify_vocabulary_free(args)
    if bool(args.classes) == bool(args.classes_file):
        raise ZsvlError("Give the classes with exactly one of --classes A B C or --classes-file F.")
    classes = (
        ClassSet.from_file(args.classes_file)
        if args.classes_file
        else ClassSet(tuple(args.classes))
    )
    result = classify(
        args.paths,
        classes,
        model=args.model or DEFAULT_MODEL,
        templates=args.templates,
        top_k=args.top_k,
        batch_size=args.batch_size,
        on_error=args.on_error,
        device=args.device,
    )
    if args.json:
        skipped = [{"source": f.source, "error": f.error} for f in result.skipped]
        print(json.dumps({"results": result.to_records(), "skipped": skipped}, indent=2))
    else:
        print(_result_table(result, args.top_k))
        for failure in result.skipped:
            print(f"skipped {failure.source}: {failure.error}", file=sys.stderr)
    return 0 if len(result) or not result.skipped else 1


def _result_table(result, k: int) -> str:
    width = max([len("image")] + [len(s) for s in result.sources])
    lines = [f"{'image':<{width}}  {'prediction':<24} score  top-{k}"]
    for src, label, score, top, top_s in zip(
        result.sources,
        result.labels,
        result.scores,
        result.topk_labels,
        result.topk_scores,
        strict=True,
    ):
        others = ", ".join(f"{lab} {s:.2f}" for lab, s in zip(top[1:], top_s[1:], strict=True))
        lines.append(f"{src:<{width}}  {label:<24} {score:.3f}  {others}")
    return "\n".join(lines)


def _cmd_models(args: argparse.Namespace) -> int:
    from zsvl.models.registry import list_models

    print("\n".join(list_models(pretrained=not args.aliases_only)))
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
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.func(args)
    except ZsvlError as exc:
        print(f"zsvl {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
