"""``zsvl descriptors generate|import`` and ``zsvl classify --descriptors/--explain``.

Kept beside ``zsvl.cli`` (which registers them): argument parsing and one library call each.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from zsvl.errors import ZsvlError

__all__ = ["add_descriptor_parsers", "classify_with_descriptors"]


def add_descriptor_parsers(sub: Any) -> None:
    """Register ``descriptors generate`` and ``descriptors import`` on a subparsers object."""
    p = sub.add_parser("descriptors", help="generate descriptors with an LLM, or import files")
    dsub = p.add_subparsers(dest="descriptors_command", required=True)
    g = dsub.add_parser("generate", help="ask an OpenAI-compatible LLM for class descriptors")
    g.add_argument("--classes-file", required=True, help="one class name per line (label order)")
    g.add_argument(
        "--style",
        choices=("cbd", "cupl", "fudd"),
        default="cbd",
        help="cbd lists, cupl sentences, or fudd differences for every class pair",
    )
    g.add_argument("--out", required=True, help="descriptor JSON to write (zsvl schema)")
    g.add_argument("--model", default="gpt-4o-mini", help="LLM name at the endpoint")
    g.add_argument("--base-url", default=None, help="e.g. http://localhost:8000/v1 (vLLM)")
    g.add_argument("--api-key-env", default="OPENAI_API_KEY", help="variable holding the key")
    g.add_argument("--temperature", type=float, default=0.0)
    g.add_argument("--max-tokens", type=int, default=400)
    g.add_argument("--seed", type=int, default=None)
    g.add_argument("--concurrency", type=int, default=4, help="requests in flight")
    g.add_argument(
        "--max-retries",
        type=int,
        default=5,
        help="retries after 429/5xx, timeouts or lost connections (openai client)",
    )
    g.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="seconds to wait for each HTTP attempt (default 60)",
    )
    g.add_argument("--concept", default=None, help="domain named in the prompts, e.g. bird")
    g.add_argument(
        "--on-failure",
        choices=("raise", "empty"),
        default="raise",
        help="after an unparsable answer and one re-ask: stop, or record it as empty",
    )
    g.add_argument(
        "--on-mention",
        choices=("report", "drop"),
        default="report",
        help="descriptions that name another class: list them in the provenance "
        "(report) or remove them (drop)",
    )
    g.add_argument("--offline", action="store_true", help="only use cached answers")
    g.add_argument("--cache-dir", default=None, help="LLM cache (default: $ZSVL_HOME/llm)")
    g.set_defaults(func=_cmd_generate)
    i = dsub.add_parser("import", help="check a CBD/CuPL/FuDD file and convert it to zsvl's")
    i.add_argument("source", help="descriptor JSON in the wild")
    i.add_argument("--classes-file", default=None, help="the ordered class list to check against")
    i.add_argument("--schema", choices=("auto", "zsvl", "cbd", "cupl", "fudd"), default="auto")
    i.add_argument("--out", default=None, help="write the zsvl-schema file here")
    i.add_argument("--strict", action="store_true", help="exit 1 when the report finds problems")
    i.set_defaults(func=_cmd_import)


def _cmd_generate(args: argparse.Namespace) -> int:
    from zsvl.text.generate import generate_descriptor_file
    from zsvl.text.llm import LLMConfig

    config = LLMConfig(
        model=args.model,
        base_url=args.base_url,
        api_key_env=args.api_key_env,
        temperature=args.temperature,
        max_tokens=args.max_tokens,
        seed=args.seed,
        concurrency=args.concurrency,
        max_retries=args.max_retries,
        timeout=args.timeout,
    )
    result, summary = generate_descriptor_file(
        args.classes_file,
        args.out,
        style=args.style,
        config=config,
        offline=args.offline,
        concept=args.concept,
        on_failure=args.on_failure,
        cache_dir=args.cache_dir,
        on_mention=args.on_mention,
    )
    count = sum(map(len, result.descriptors))
    print(
        f"wrote {args.out}: {len(result.classes)} classes, {count} descriptors, "
        f"{len(result.pairs)} pairs; {summary}"
    )
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    from zsvl.text.importers import import_descriptors

    result, report = import_descriptors(args.source, args.classes_file, schema=args.schema)
    print(report)
    if args.out:
        result.save(args.out)
        print(f"wrote {args.out}")
    return 1 if args.strict and not report.ok else 0


def classify_with_descriptors(args: argparse.Namespace) -> int:
    """``zsvl classify --descriptors F [--explain N]``: descriptor scores and their evidence."""
    from zsvl.api import explain_images
    from zsvl.classes import ClassSet

    if not args.descriptors:
        raise ZsvlError(
            "--explain needs --descriptors FILE (make one with zsvl descriptors "
            "generate, or name a packaged file such as toy_fine_cbd)."
        )
    classes = (
        ClassSet.from_file(args.classes_file)
        if args.classes_file
        else ClassSet(tuple(args.classes))
        if args.classes
        else None
    )
    out = explain_images(
        args.paths,
        args.descriptors,
        model=args.model,
        top=args.explain or 0,
        classes=classes,
        batch_size=args.batch_size,
        on_error=args.on_error,
        device=args.device,
    )
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for r in out["results"]:
            print(f"{r['source']}  {r['label']}  p={r['probability']:.3f}  score={r['score']:.3f}")
            for ev in r["explanation"]:
                print(f"    {ev['similarity']:+.3f}  {ev['descriptor']}")
        for s in out["skipped"]:
            print(f"skipped {s['source']}: {s['error']}", file=sys.stderr)
    return 0 if out["results"] or not out["skipped"] else 1
