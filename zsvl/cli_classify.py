"""``zsvl classify`` and ``zsvl fit``: classify files with any method, save fitted classifiers."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from zsvl.cli_args import positive_int
from zsvl.errors import ZsvlError

__all__ = ["add_classify_parsers"]

_MODEL_HELP = (
    "model spec (default: ViT-B-32:laion2b_s34b_b79k, real weights; 'toy' is the tiny model "
    "shipped with zsvl, the default of zsvl eval and zsvl demo)"
)
_DEFAULT_VIEWS = 10


def _method_choices() -> list[str]:
    from zsvl.fitting import METHODS

    return list(METHODS)


def _add_class_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--classes",
        nargs="+",
        default=None,
        metavar="NAME",
        help='class names, one per shell word: --classes cat dog "tree frog"',
    )
    p.add_argument(
        "--classes-file",
        default=None,
        metavar="FILE",
        help="UTF-8 file with one class name per line, or a JSON list",
    )


def _add_method_args(p: argparse.ArgumentParser, *, method_default: str | None) -> None:
    p.add_argument(
        "--method",
        choices=_method_choices(),
        default=method_default,
        help="zeroshot (default), cbd, cupl, waffle, fudd, gda, tip, tip-x, gda-em, "
        "caption-support",
    )
    p.add_argument(
        "--support",
        default=None,
        metavar="DIR",
        help="labelled shots, one sub-folder per class: DIR/<class>/*.jpg "
        "(gda, tip, tip-x; hyperparameters are chosen on these shots alone)",
    )
    p.add_argument(
        "--support-views",
        type=positive_int,
        default=None,
        metavar="N",
        help=f"augmented views encoded per support image (default {_DEFAULT_VIEWS})",
    )
    p.add_argument("--model", default=None, help=_MODEL_HELP)
    p.add_argument(
        "--templates",
        default=None,
        help="template set (single, imagenet7, imagenet80, coop:<dataset>) or a JSON "
        "file (default: the model's own set)",
    )
    p.add_argument(
        "--descriptors",
        default=None,
        metavar="FILE",
        help="descriptor file or packaged name (cbd, cupl, fudd, waffle)",
    )
    p.add_argument(
        "--index",
        default=None,
        metavar="DIR",
        help="caption index (--method caption-support or --vocabulary-free)",
    )
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: CUDA if present)")


def add_classify_parsers(sub: Any) -> None:
    """Register ``classify`` and ``fit`` on the ``zsvl`` subparsers."""
    p = sub.add_parser("classify", help="classify image files or folders (any method)")
    p.add_argument("paths", nargs="+", help="image files or folders (searched recursively)")
    _add_class_args(p)
    p.add_argument(
        "--classifier",
        default=None,
        metavar="FILE",
        help="a classifier saved by zsvl fit (fixes classes, method and model)",
    )
    _add_method_args(p, method_default=None)
    p.add_argument("--top-k", type=positive_int, default=5, help="classes listed per image")
    p.add_argument(
        "--on-error",
        choices=("skip", "raise"),
        default="skip",
        help="skip unreadable images and report them (default), or stop at the first",
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
    p.add_argument(
        "--vocabulary-free",
        action="store_true",
        help="name each image without a class list (CaSED; needs --index)",
    )
    p.set_defaults(func=_cmd_classify)

    f = sub.add_parser("fit", help="fit a classifier (few-shot from a folder) and save it")
    f.add_argument(
        "support_dir",
        nargs="?",
        default=None,
        metavar="SUPPORT_DIR",
        help="labelled shots DIR/<class>/*.jpg (same as --support)",
    )
    _add_class_args(f)
    _add_method_args(f, method_default="zeroshot")
    f.add_argument(
        "--out",
        required=True,
        metavar="FILE",
        help="classifier file to write, e.g. clf.zsvl (zip of arrays + JSON)",
    )
    f.set_defaults(func=_cmd_fit)


def _given(args: argparse.Namespace, names: list[str]) -> list[str]:
    """The flags among ``names`` (dest names) that were given on the command line."""
    out = []
    for name in names:
        value = getattr(args, name, None)
        if value not in (None, False, []):
            out.append("--" + name.replace("_", "-"))
    return out


def _refuse_conflicts(args: argparse.Namespace) -> None:
    if args.classes and args.classes_file:
        raise ZsvlError("--classes and --classes-file were both given; use one of them.")
    if args.classifier:
        extra = _given(
            args,
            [
                "classes",
                "classes_file",
                "method",
                "support",
                "support_views",
                "templates",
                "descriptors",
                "index",
                "vocabulary_free",
                "explain",
            ],
        )
        if extra:
            raise ZsvlError(
                f"--classifier fixes the classes, method and its inputs; leave out "
                f"{', '.join(extra)}."
            )
        return
    if args.vocabulary_free:
        extra = _given(
            args,
            ["classes", "classes_file", "method", "support", "templates", "descriptors", "explain"],
        )
        if extra:
            raise ZsvlError(
                f"--vocabulary-free names images without a class list; leave out "
                f"{', '.join(extra)}."
            )
        return
    if args.support_views and not (args.support or getattr(args, "support_dir", None)):
        raise ZsvlError("--support-views needs --support DIR.")
    if args.index and args.method is None:
        raise ZsvlError(
            "--index is used by --method caption-support (with a class list) or by "
            "--vocabulary-free (without one); add one of them."
        )
    if args.explain is not None and args.method not in (None, "cbd"):
        raise ZsvlError(
            "--explain shows descriptor evidence: use it with --descriptors FILE "
            "(method cbd), not with --method " + str(args.method) + "."
        )


def _classes(args: argparse.Namespace) -> Any:
    from zsvl.classes import ClassSet

    if args.classes_file:
        return ClassSet.from_file(args.classes_file)
    return ClassSet(tuple(args.classes)) if args.classes else None


def _model(args: argparse.Namespace) -> str:
    from zsvl.models import DEFAULT_MODEL

    if args.model:
        return args.model
    if not args.quiet and not args.json:
        print(
            f"zsvl {args.command}: using the default model {DEFAULT_MODEL} (real weights; "
            "--model toy for the tiny model shipped with zsvl)",
            file=sys.stderr,
        )
    return DEFAULT_MODEL


def _cmd_classify(args: argparse.Namespace) -> int:
    from zsvl.api import classify
    from zsvl.fitting import check_method_inputs

    _refuse_conflicts(args)
    if args.vocabulary_free:
        from zsvl.cli_index import classify_vocabulary_free

        return classify_vocabulary_free(args)
    if args.explain is not None:
        from zsvl.cli_descriptors import classify_with_descriptors

        return classify_with_descriptors(args)
    method = args.method or ("cbd" if args.descriptors else "zeroshot")
    if not args.classifier:
        check_method_inputs(
            method,
            support=args.support,
            descriptors=args.descriptors,
            index=args.index,
            templates=args.templates,
        )
    classes = _classes(args)
    if classes is None and not (args.classifier or args.support or args.descriptors):
        raise ZsvlError(
            "Give the classes with --classes A B C or --classes-file F (or "
            "--classifier FILE, or --support DIR whose sub-folders name them)."
        )
    model = args.model if args.classifier else _model(args)
    result = classify(
        args.paths,
        classes,
        model=model,
        method=method,
        support=args.support,
        templates=args.templates,
        descriptors=args.descriptors,
        index=args.index,
        classifier=args.classifier,
        top_k=args.top_k,
        batch_size=args.batch_size,
        on_error=args.on_error,
        device=args.device,
        support_views=args.support_views or _DEFAULT_VIEWS,
    )
    if args.json:
        skipped = [{"source": f.source, "error": f.error} for f in result.skipped]
        print(
            json.dumps(
                {
                    "method": result.method,
                    "params": result.params,
                    "classes": list(result.classes.names),
                    "results": result.to_records(),
                    "skipped": skipped,
                },
                indent=2,
            )
        )
    else:
        print(_result_table(result, args.top_k))
        for failure in result.skipped:
            print(f"skipped {failure.source}: {failure.error}", file=sys.stderr)
    return 0 if len(result) or not result.skipped else 1


def _result_table(result: Any, k: int) -> str:
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


def _cmd_fit(args: argparse.Namespace) -> int:
    from zsvl.embed import load_model
    from zsvl.fitting import check_method_inputs, fit_classifier
    from zsvl.persist import classifier_classes, save_classifier

    if args.support_dir and args.support and args.support_dir != args.support:
        raise ZsvlError("Give the support folder once: as SUPPORT_DIR or as --support DIR.")
    args.support = args.support or args.support_dir
    _refuse_conflicts_fit(args)
    check_method_inputs(
        args.method,
        support=args.support,
        descriptors=args.descriptors,
        index=args.index,
        templates=args.templates,
    )
    classes = _classes(args)
    model = _model(args)
    encoder = load_model(model, device=args.device)
    fitted = fit_classifier(
        args.method,
        encoder,
        classes,
        support=args.support,
        templates=args.templates,
        descriptors=args.descriptors,
        index=args.index,
        support_views=args.support_views or _DEFAULT_VIEWS,
        batch_size=args.batch_size,
    )
    path = save_classifier(fitted.classifier, args.out, model=model)
    classes = classifier_classes(fitted.classifier)
    summary = {
        "path": str(path),
        "method": fitted.method,
        "model": model,
        "classes": list(classes.names),
        "params": fitted.params,
        "search": fitted.search,
        "search_top1": fitted.search_top1,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    chosen = ", ".join(f"{k}={v:g}" for k, v in fitted.params.items())
    how = ""
    if fitted.search:
        how = f" chosen by {fitted.search}"
        if fitted.search_top1 is not None:
            how += f" (top-1 {fitted.search_top1:.1f} % on the search set)"
    print(
        f"saved a {fitted.method} classifier for {len(classes)} classes to {path}"
        + (f"; {chosen}{how}" if chosen else "")
        + f"\nuse it: zsvl classify IMAGES --classifier {path}"
    )
    return 0


def _refuse_conflicts_fit(args: argparse.Namespace) -> None:
    if args.classes and args.classes_file:
        raise ZsvlError("--classes and --classes-file were both given; use one of them.")
    if args.support_views and not args.support:
        raise ZsvlError("--support-views needs --support DIR.")
