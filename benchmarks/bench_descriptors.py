"""Benchmark: descriptor scoring at ImageNet size, zsvl vs a per-class Python loop.

50,000 images x 1,000 classes x about 7 descriptors each (5 to 9), D = 512, random unit vectors.
- zsvl: ``aggregate_texts`` builds the C x D matrix once, ``matmul_scores`` is one product;
- reference (CBD's style): for each class, ``X @ T_c.T`` and a mean over its descriptors;
- bare: one ``X @ W.T`` of the same size, the floor.
Also the ``max`` aggregation (segment max) against the per-class loop, on 10,000 images.
Checks the scores agree.
Writes benchmarks/results/descriptors.json and prints a one-line summary.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from zsvl.methods.descriptors import aggregate_texts, matmul_scores, segment_max_scores


def unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.standard_normal((n, d), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def best_of(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def loop_scores(X: torch.Tensor, E: torch.Tensor, bounds: np.ndarray, how: str) -> np.ndarray:
    """The reference: one small product per class, in a Python loop."""
    cols = []
    for c in range(len(bounds) - 1):
        sims = X @ E[bounds[c] : bounds[c + 1]].T
        cols.append(sims.mean(1) if how == "mean" else sims.amax(1))
    return torch.stack(cols, 1).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=50_000)
    parser.add_argument("--classes", type=int, default=1_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--max-images", type=int, default=10_000, help="images for 'max'")
    out = Path(__file__).parent / "results" / "descriptors.json"
    parser.add_argument("--out", default=str(out))
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    counts = rng.integers(5, 10, size=args.classes)  # 5..9 descriptors, mean about 7
    owners = np.repeat(np.arange(args.classes), counts)
    bounds = np.concatenate([[0], np.cumsum(counts)])
    E = unit(rng, len(owners), args.dim)
    X = unit(rng, args.images, args.dim)
    Xt, Et = torch.from_numpy(X), torch.from_numpy(E)

    build_s, W = best_of(lambda: aggregate_texts(E, owners, args.classes, "mean_sims"), args.repeat)
    score_s, zs = best_of(lambda: matmul_scores(X, W), args.repeat)
    Wt = torch.from_numpy(W)
    with torch.inference_mode():
        bare_s, _ = best_of(lambda: (Xt @ Wt.T).numpy(), args.repeat)
        loop_s, ref = best_of(lambda: loop_scores(Xt, Et, bounds, "mean"), 1)
    max_err = float(np.abs(zs - ref).max())
    Xm = X[: args.max_images]
    max_s, zmax = best_of(lambda: segment_max_scores(Xm, E, owners, args.classes), 1)
    with torch.inference_mode():
        loop_max_s, ref_max = best_of(lambda: loop_scores(Xt[: len(Xm)], Et, bounds, "max"), 1)
    max_err_max = float(np.abs(zmax - ref_max).max())
    assert max_err < 1e-4 and max_err_max < 1e-4, (max_err, max_err_max)

    zsvl_s = build_s + score_s
    result = {
        "images": args.images,
        "classes": args.classes,
        "dim": args.dim,
        "texts": int(len(owners)),
        "mean_descriptors": float(counts.mean()),
        "torch_threads": torch.get_num_threads(),
        "mean_sims": {
            "zsvl_build_s": build_s,
            "zsvl_score_s": score_s,
            "zsvl_total_s": zsvl_s,
            "bare_matmul_s": bare_s,
            "per_class_loop_s": loop_s,
            "speedup_vs_loop": loop_s / zsvl_s,
            "ratio_to_bare_matmul": zsvl_s / bare_s,
            "max_abs_diff": max_err,
        },
        "max": {
            "images": int(len(Xm)),
            "zsvl_s": max_s,
            "per_class_loop_s": loop_max_s,
            "speedup_vs_loop": loop_max_s / max_s,
            "max_abs_diff": max_err_max,
        },
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    m = result["mean_sims"]
    print(
        f"descriptors {args.images}x{args.classes}x~{counts.mean():.1f} D={args.dim}: zsvl "
        f"{zsvl_s:.3f}s (build {build_s:.3f}s) vs per-class loop {loop_s:.2f}s = "
        f"{m['speedup_vs_loop']:.1f}x; bare matmul {bare_s:.3f}s (zsvl/bare "
        f"{m['ratio_to_bare_matmul']:.2f}); max ({len(Xm)} images): {max_s:.2f}s vs loop "
        f"{loop_max_s:.2f}s = "
        f"{result['max']['speedup_vs_loop']:.1f}x"
    )


if __name__ == "__main__":
    main()
