"""Print zsvl's results next to the published numbers for the CoOp 11-dataset suite.

Usage: python examples/compare_published.py results/ [--method zeroshot] [--shots 0]
Published: CLIP RN50 zero-shot with CoOp's prompts (CoOp paper; the start of most tables) and
GDA ViT-B/16 at 16 shots (Wang et al., ICLR 2024).
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np

from zsvl.eval.runner import iter_records

PUBLISHED = {
    ("zeroshot", 0, "RN50"): {
        "ImageNet": 58.18, "Caltech101": 86.29, "OxfordPets": 85.77, "StanfordCars": 55.61,
        "Flowers102": 66.14, "Food101": 77.31, "FGVCAircraft": 17.28, "SUN397": 58.52,
        "DTD": 42.32, "EuroSAT": 37.56, "UCF101": 61.46,
    },
    ("gda", 16, "ViT-B-16"): {
        "ImageNet": 72.24, "Caltech101": 95.79, "OxfordPets": 93.73, "StanfordCars": 82.63,
        "Flowers102": 97.92, "Food101": 87.27, "FGVCAircraft": 50.33, "SUN397": 75.87,
        "DTD": 71.26, "EuroSAT": 89.19, "UCF101": 84.09,
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("results")
    parser.add_argument("--method", default="zeroshot")
    parser.add_argument("--shots", type=int, default=0)
    parser.add_argument("--arch", default="RN50", help="which published row to compare with")
    args = parser.parse_args()
    ours: dict[str, list[float]] = defaultdict(list)
    for rec in iter_records(args.results):
        if rec.get("status") == "ok" and rec["method"] == args.method and rec["shots"] == args.shots:
            ours[rec["dataset"]].append(rec["metrics"]["top1"])
    published = PUBLISHED.get((args.method, args.shots, args.arch), {})
    print(f"{'dataset':<14} {'zsvl':>7} {'published':>10} {'diff':>7}")
    for name in sorted(set(ours) | set(published)):
        mine = np.mean(ours[name]) if ours.get(name) else float("nan")
        theirs = published.get(name, float("nan"))
        print(f"{name:<14} {mine:7.2f} {theirs:10.2f} {mine - theirs:+7.2f}")


if __name__ == "__main__":
    main()
