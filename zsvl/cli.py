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

    from zsvl.cli_descriptors import add_descriptor_parsers

    add_descriptor_parsers(sub)  # descriptors generate | import

    from zsvl.cli_index import add_index_parsers

    add_index_parsers(sub)  # index build | info | search

    from zsvl.cli_eval import add_eval_parsers

    add_eval_parsers(sub)  # eval | report | demo
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
