"""Does decoding keep up with the model? Files -> iter_batches -> forward vs the bare forward.

Writes N JPEGs (256-500 px a side, photo-like content) to a temporary folder, then measures with
the same model, batch size and torch threads:

- bare: the image forward (``model.encode_image``) on preloaded, preprocessed tensors;
- pipeline: ``iter_batches(paths, preprocess)`` (decode + preprocess in worker processes) feeding
  the same forward, timed from the call to the last forward, worker start-up included.

Passes run in rounds of bare, pipeline, pipeline, bare (ABBA), so a linear drift of the machine's
speed (turbo, thermal, a neighbour's load) hits both sides alike; the JSON keeps every pass time,
the per-round ratios, and the CPU share other processes and the hypervisor (steal) took meanwhile.
Files are read from the page cache (they were just written), as for any second pass over a set.
The model is a real architecture with random weights
(``open_clip.create_model_and_transforms(name)`` with no pretrained tag: no download).

    .venv/bin/python benchmarks/bench_image_pipeline.py            # ViT-B-32, N=512, batch 64
    .venv/bin/python benchmarks/bench_image_pipeline.py --n 256 --device cuda

Prints a one-line summary; writes benchmarks/results/image_pipeline.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import open_clip
import PIL
import torch
from PIL import Image

from zsvl.data.images import default_num_workers, iter_batches, load_image

RESULTS = Path(__file__).resolve().parent / "results" / "image_pipeline.json"


def write_jpegs(folder: Path, n: int, seed: int = 0) -> list[Path]:
    """n photo-like JPEGs (smooth colour fields + grain), sides drawn from 256-500 px."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        width, height = (int(v) for v in rng.integers(256, 501, size=2))
        coarse = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
        image = Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC)
        grain = rng.normal(0, 10, (height, width, 3))
        pixels = np.clip(np.asarray(image, dtype=np.float32) + grain, 0, 255).astype(np.uint8)
        path = folder / f"{i:05d}.jpg"
        Image.fromarray(pixels).save(path, format="JPEG", quality=90)
        paths.append(path)
    return paths


def make_forward(model: torch.nn.Module, device: torch.device) -> Callable[[torch.Tensor], None]:
    """The timed step: move a (B, 3, H, W) batch to the device and encode it."""

    def forward(pixels: torch.Tensor) -> None:
        with torch.inference_mode():
            model.encode_image(pixels.to(device, non_blocking=True))

    return forward


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_bare(forward, pixels: torch.Tensor, batch_size: int, device: torch.device) -> float:
    """Seconds to run the forward over ``pixels`` (N, 3, H, W) in batches."""
    sync(device)
    start = time.perf_counter()
    for begin in range(0, len(pixels), batch_size):
        forward(pixels[begin : begin + batch_size])
    sync(device)
    return time.perf_counter() - start


def time_pipeline(forward, paths, preprocess, batch_size, num_workers, device) -> float:
    """Seconds from calling iter_batches to the end of the last forward (None: no forward)."""
    sync(device)
    start = time.perf_counter()
    seen = 0
    for batch in iter_batches(paths, preprocess, batch_size=batch_size, num_workers=num_workers):
        if forward is not None:
            forward(batch.pixels)
        seen += len(batch.indices)
    sync(device)
    assert seen == len(paths), f"pipeline returned {seen} of {len(paths)} images"
    return time.perf_counter() - start


def cpu_seconds() -> tuple[float, float, float]:
    """(this process + reaped workers, whole machine busy, hypervisor steal) CPU seconds."""
    own = sum(
        usage.ru_utime + usage.ru_stime
        for usage in (resource.getrusage(resource.RUSAGE_SELF),
                      resource.getrusage(resource.RUSAGE_CHILDREN))
    )  # fmt: skip
    try:
        ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:  # not Linux: no way to see other load
        return own, float("nan"), float("nan")
    hz = os.sysconf("SC_CLK_TCK")
    busy = sum(ticks[:3]) + sum(ticks[5:7])  # user nice system irq softirq
    return own, busy / hz, ticks[7] / hz


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--n", type=int, default=512, help="number of JPEG files")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2, help="bare/pipeline/pipeline/bare rounds")
    parser.add_argument("--num-workers", type=int, default=None, help="default: zsvl's choice")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    torch.manual_seed(0)

    model, _, preprocess = open_clip.create_model_and_transforms(args.model)
    model = model.to(device).eval()
    forward = make_forward(model, device)
    with tempfile.TemporaryDirectory(prefix="zsvl_bench_") as tmp:
        paths = write_jpegs(Path(tmp), args.n)
        mean_kib = sum(p.stat().st_size for p in paths) / len(paths) / 1024
        start = time.perf_counter()
        pixels = torch.stack([preprocess(load_image(p)) for p in paths])
        serial_decode = args.n / (time.perf_counter() - start)
        if device.type == "cuda":
            pixels = pixels.pin_memory()
        for _ in range(2):  # warm-up: allocator, kernels, caches
            forward(pixels[: args.batch_size])

        def bare() -> float:
            return time_bare(forward, pixels, args.batch_size, device)

        def pipeline() -> float:
            return time_pipeline(
                forward, paths, preprocess, args.batch_size, args.num_workers, device
            )

        own0, busy0, steal0 = cpu_seconds()
        rounds = []  # ABBA: linear drift of the machine's speed cancels within a round
        for _ in range(args.rounds):
            b1, p1, p2, b2 = bare(), pipeline(), pipeline(), bare()
            rounds.append({"bare_s": [b1, b2], "pipeline_s": [p1, p2]})
        own1, busy1, steal1 = cpu_seconds()
        fwd_cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        bare()
        fwd_cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        dec_cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        decode_s = time_pipeline(None, paths, preprocess, args.batch_size, args.num_workers, device)
        dec_cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)  # the workers, reaped by now

    def cpu_ms(before: resource.struct_rusage, after: resource.struct_rusage) -> float:
        spent = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return 1000 * spent / args.n

    forward_cpu_ms, decode_cpu_ms = cpu_ms(fwd_cpu0, fwd_cpu1), cpu_ms(dec_cpu0, dec_cpu1)

    bare_s = sum(sum(r["bare_s"]) for r in rounds)
    pipe_s = sum(sum(r["pipeline_s"]) for r in rounds)
    measured_s = bare_s + pipe_s
    workers = args.num_workers if args.num_workers is not None else default_num_workers()
    result = {
        "model": args.model,
        "weights": "random (no pretrained)",
        "device": str(device),
        "n_images": args.n,
        "image_sides_px": [256, 500],
        "mean_file_kib": round(mean_kib, 1),
        "batch_size": args.batch_size,
        "input_px": list(pixels.shape[-2:]),
        "num_workers": workers,
        "torch_threads_main": torch.get_num_threads(),
        "cpu_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "rounds": args.rounds,
        "bare_images_per_s": round(2 * args.rounds * args.n / bare_s, 2),
        "pipeline_images_per_s": round(2 * args.rounds * args.n / pipe_s, 2),
        "ratio": round(bare_s / pipe_s, 4),
        "ratio_per_round": [round(sum(r["bare_s"]) / sum(r["pipeline_s"]), 4) for r in rounds],
        "pass_seconds": [
            [round(v, 2) for v in (r["bare_s"][0], *r["pipeline_s"], r["bare_s"][1])]
            for r in rounds
        ],
        "decode_only_images_per_s": round(args.n / decode_s, 1),
        # CPU time per image: forward (main process, all threads) and decode + preprocess
        # (workers). On a machine whose cores are all busy the pipeline cannot beat
        # forward / (forward + decode), whatever the overlap.
        "forward_cpu_ms_per_image": round(forward_cpu_ms, 1),
        "decode_cpu_ms_per_image": round(decode_cpu_ms, 2),
        "cpu_bound_ratio": round(forward_cpu_ms / (forward_cpu_ms + decode_cpu_ms), 4),
        "serial_decode_images_per_s": round(serial_decode, 1),
        "other_load_cpu_share": round(((busy1 - busy0) - (own1 - own0)) / measured_s, 3),
        "steal_cpu_share": round((steal1 - steal0) / measured_s, 3),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "open_clip": open_clip.__version__,
            "pillow": PIL.__version__,
        },
        "cpu": platform.processor() or platform.machine(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if result["other_load_cpu_share"] > 0.1 or result["steal_cpu_share"] > 0.1:
        result["warning"] = (
            "other processes or the hypervisor took CPU during the measurement; the ratio mostly "
            "measures their interference with the forward's threads. Re-run on a quiet machine."
        )
        print(f"WARNING: {result['warning']}", file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"{args.model} {device} N={args.n} batch={args.batch_size} workers={workers} "
        f"rounds={args.rounds}: bare {result['bare_images_per_s']:.2f} img/s, pipeline "
        f"{result['pipeline_images_per_s']:.2f} img/s, ratio {result['ratio']:.3f} "
        f"(per round {result['ratio_per_round']}; decode-only "
        f"{result['decode_only_images_per_s']:.0f} img/s; CPU-bound ratio "
        f"{result['cpu_bound_ratio']:.3f}; other load "
        f"{result['other_load_cpu_share']:.0%}, steal {result['steal_cpu_share']:.0%}) "
        f"-> {args.out}"
    )
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
