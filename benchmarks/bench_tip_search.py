"""Tip-Adapter hyperparameter search: zsvl's vectorised grid vs the reference double loop.

Problem (the issue's size): 10,000 validation features x 16,000 cache keys (16 shots x 1,000
classes) x 1,000 classes, D = 1,024 (RN50), Tip-Adapter's ImageNet grid of 200 betas x 20
alphas. Features are synthetic unit vectors around random class directions, noisy enough that
the accuracy differs across the grid (the timing does not depend on their values).

- zsvl: ``tip_grid_counts`` on the whole 4,000-point grid (A = X K^T once per row block; one
  exp and one per-class sum per beta; all alphas at once).
- reference: Tip-Adapter's ``search_hp`` loop, which for every (beta, alpha) recomputes the
  affinity, exponentiates it, multiplies by the dense one-hot values and scores the logits. It
  is timed on the first ``--ref-points`` grid points (in its own loop order) and extrapolated
  linearly to the 4,000 points (each point costs the same). The accuracies at those points are
  compared with zsvl's counts.

Writes ``benchmarks/results/tip_search.json`` and prints a one-line summary.

Usage::

    python benchmarks/bench_tip_search.py [--n-val 10000] [--n-classes 1000] [--shots 16]
        [--dim 1024] [--ref-points 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from zsvl import __version__
from zsvl.methods.grid_search import tip_grid_counts, tip_reference_grid
from zsvl.methods.tip import TipAdapter

RESULTS = Path(__file__).resolve().parent / "results" / "tip_search.json"


def make_problem(
    n_val: int, n_classes: int, shots: int, dim: int, seed: int = 0, noise: float = 3.0
):
    """Unit features around random class directions, noisy enough that accuracy varies over
    the grid (about 48% zero-shot and up to about 67% with the cache at 1,000 classes)."""
    g = torch.Generator().manual_seed(seed)

    def around(points: torch.Tensor) -> torch.Tensor:
        jitter = noise * torch.randn(points.shape, generator=g) / dim**0.5
        return torch.nn.functional.normalize(points + jitter, dim=1)

    centres = torch.nn.functional.normalize(torch.randn(n_classes, dim, generator=g), dim=1)
    y_keys = torch.arange(n_classes).repeat_interleave(shots)
    y_val = torch.randint(0, n_classes, (n_val,), generator=g)
    return around(centres), around(centres[y_keys]), y_keys, around(centres[y_val]), y_val


def reference_points(text, keys, y_keys, val, y_val, betas, alphas, n_points, device):
    """Tip-Adapter's search_hp double loop, stopped after ``n_points`` grid points."""
    values = torch.nn.functional.one_hot(y_keys, text.shape[0]).float().to(device)
    features, cache_keys = val.to(device), keys.T.contiguous().to(device)
    clip_weights, labels = text.T.contiguous().to(device), y_val.to(device)
    out, times = [], []
    with torch.inference_mode():
        for beta in betas:
            for alpha in alphas:
                start = time.perf_counter()
                affinity = features @ cache_keys
                cache_logits = ((-1) * (beta - beta * affinity)).exp() @ values
                clip_logits = 100.0 * features @ clip_weights
                tip_logits = clip_logits + cache_logits * alpha
                correct = int((tip_logits.argmax(1) == labels).sum())
                times.append(time.perf_counter() - start)
                out.append((float(beta), float(alpha), correct))
                if len(out) == n_points:
                    return out, times
    return out, times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-val", type=int, default=10_000)
    parser.add_argument("--n-classes", type=int, default=1_000)
    parser.add_argument("--shots", type=int, default=16)
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--ref-points", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    grid = tip_reference_grid(scale=(7.0, 3.0), steps=(200, 20))
    betas, alphas = grid["beta"], grid["alpha"]
    text, keys, y_keys, val, y_val = make_problem(args.n_val, args.n_classes, args.shots, args.dim)
    load_before = os.getloadavg()
    tip = TipAdapter(text.numpy(), logit_scale=100.0, device=args.device)
    start = time.perf_counter()
    tip.fit(keys.numpy(), y_keys.numpy())
    counts = tip_grid_counts(tip, val.numpy(), y_val.numpy(), betas=betas, alphas=alphas)
    zsvl_s = time.perf_counter() - start

    ref, ref_times = reference_points(
        text, keys, y_keys, val, y_val, betas, alphas, args.ref_points, args.device
    )
    per_point = float(np.mean(ref_times))
    n_points = len(betas) * len(alphas)
    ref_total = per_point * n_points
    agree = [
        c == int(counts[i // len(alphas), i % len(alphas), 0]) for i, (_, _, c) in enumerate(ref)
    ]
    best = np.unravel_index(int(np.argmax(counts[:, :, 0])), counts.shape[:2])
    result = {
        "benchmark": "tip_search",
        "n_val": args.n_val,
        "n_keys": len(y_keys),
        "n_classes": args.n_classes,
        "dim": args.dim,
        "grid": {
            "betas": len(betas),
            "alphas": len(alphas),
            "points": n_points,
            "scale": [7.0, 3.0],
        },
        "device": args.device,
        "torch_threads": torch.get_num_threads(),
        "zsvl_s": round(zsvl_s, 2),
        "reference": {
            "points_timed": len(ref_times),
            "seconds_per_point": round(per_point, 3),
            "point_seconds": [round(t, 3) for t in ref_times],
            "extrapolated_total_s": round(ref_total, 1),
            "note": "timed on the first grid points in the reference loop order and "
            "extrapolated linearly to the full grid",
        },
        "speedup": round(ref_total / zsvl_s, 1),
        "reference_counts_match": all(agree),
        "best": {
            "beta": float(betas[best[0]]),
            "alpha": float(alphas[best[1]]),
            "val_top1": round(100.0 * counts[best[0], best[1], 0] / args.n_val, 2),
        },
        "val_top1_range": [
            round(100.0 * counts.min() / args.n_val, 2),
            round(100.0 * counts.max() / args.n_val, 2),
        ],
        "loadavg_before": [round(v, 2) for v in load_before],
        "loadavg_after": [round(v, 2) for v in os.getloadavg()],
        "zsvl": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"tip_search: {n_points} grid points on {args.n_val} x {len(y_keys)} x {args.n_classes} "
        f"(D={args.dim}, {args.device}): zsvl {zsvl_s:.1f} s, reference {per_point:.2f} s/point "
        f"x {n_points} = {ref_total:.0f} s (extrapolated from {len(ref_times)} points), "
        f"speedup {ref_total / zsvl_s:.0f}x, counts match: {all(agree)}"
    )
    return 0 if all(agree) else 1


if __name__ == "__main__":
    sys.exit(main())
