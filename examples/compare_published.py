"""Print zsvl's results next to the published numbers for the CoOp 11-dataset suite.

Usage: python examples/compare_published.py results/ [--method zeroshot] [--shots 0]
Published: CLIP RN50 zero-shot with CoOp's prompts (CoOp paper; the start of most tables) and
GDA ViT-B/16 at 16 shots (Wang et al., ICLR 2024).
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict

import numpy as np

from zsvl.eval.records import iter_records

PUBLISHED = {
    ("zeroshot", 0, "RN50"): {
        "ImageNet": 58.18,
        "Caltech101": 86.29,
        "OxfordPets": 85.77,
        "StanfordCars": 55.61,
        "Flowers102": 66.14,
        "Food101": 77.31,
        "FGVCAircraft": 17.28,
        "SUN397": 58.52,
        "DTD": 42.32,
        "EuroSAT": 37.56,
        "UCF101": 61.46,
    },
    ("gda", 16, "ViT-B-16"): {
        "ImageNet": 72.24,
        "Caltech101": 95.79,
        "OxfordPets": 93.73,
        "StanfordCars": 82.63,
        "Flowers102": 97.92,
        "Food101": 87.27,
        "FGVCAircraft": 50.33,
        "SUN397": 75.87,
        "DTD": 71.26,
        "EuroSAT": 89.19,
        "UCF101": 84.09,
    },
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("results")
    parser.add_argument("--method", default="zeroshot")
    parser.add_argument("--shots", type=int, default=0)
    parser.add_argument("--arch", default="RN50", help="which published row to compare with")
    args = parser.parse_args()
    published = PUBLISHED.get((args.method, args.shots, args.arch))
    if published is None:
        known = ", ".join(f"{m} {k}-shot {a}" for m, k, a in PUBLISHED)
        print(
            f"No published row for {args.method} {args.shots}-shot {args.arch}; known: {known}.",
            file=sys.stderr,
        )
        return 2
    ours: dict[str, list[float]] = defaultdict(list)
    found: set[str] = set()
    for rec in iter_records(args.results):
        found.add(rec.get("dataset", "?"))
        if (
            rec.get("status") == "ok"
            and rec["method"] == args.method
            and rec["shots"] == args.shots
        ):
            ours[rec["dataset"]].append(rec["metrics"]["top1"])
    mine = {name: ours[name] for name in published if ours.get(name)}
    if not mine:
        others = f" (records found for: {', '.join(sorted(found))})" if found else ""
        print(
            f"No CoOp-11 records of {args.method} at {args.shots} shots under {args.results}"
            f"{others}. Run the suite first, e.g.\n"
            f"  zsvl eval --suite coop11 --data-root ~/data --model {args.arch}:openai "
            f"--methods {args.method} --shots {args.shots} --out {args.results}",
            file=sys.stderr,
        )
        return 1
    print(f"{'dataset':<14} {'zsvl':>7} {'published':>10} {'diff':>7}")
    for name, theirs in published.items():
        if name not in mine:
            print(f"{name:<14} {'not run':>7} {theirs:10.2f}")
            continue
        value = float(np.mean(mine[name]))
        print(f"{name:<14} {value:7.2f} {theirs:10.2f} {value - theirs:+7.2f}")
    if len(mine) == len(published):
        ours_mean = np.mean([np.mean(v) for v in mine.values()])
        theirs_mean = np.mean(list(published.values()))
        print(f"{'mean':<14} {ours_mean:7.2f} {theirs_mean:10.2f} {ours_mean - theirs_mean:+7.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
