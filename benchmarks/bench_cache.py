"""Cold vs warm encoding through CachedEncoder with the real open_clip backend.

The same 10,000 captions (generated from word lists, 6 to ~28 words, mean about 11 as in COCO)
and the same N small PNG files are encoded twice: first against an empty store (every input goes
through the model and is written), then through a fresh CachedEncoder and store object on the
same files (every input is keyed - files are re-read and hashed - and read back from SQLite).
Reports both times and their ratio, writes ``benchmarks/results/cache.json`` and prints a
one-line summary.

Usage::

    python benchmarks/bench_cache.py [--n-texts 10000] [--n-images 2000] [--model ViT-B-32:random]

The defaults (10,000 texts, N = 2,000 images) take about 4.5 minutes on 2 CPU cores (ViT-B-32
encodes about 70 texts/s and 19 images/s there); pass a larger N on a GPU. The store lives in a
temporary folder.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from zsvl import __version__
from zsvl.embed.cached import CachedEncoder
from zsvl.embed.store import EmbeddingStore

RESULTS = Path(__file__).resolve().parent / "results" / "cache.json"

_ADJ = "small large red blue green old young wooden shiny blurry bright dark fluffy striped".split()
_NOUN = (
    "cat dog car bicycle house tree bird horse boat truck chair table lamp flower mountain river "
    "street bridge child woman man guitar laptop cup sandwich pizza clock train airplane kite"
).split()
_VERB = "sitting standing lying parked running flying floating resting waiting leaning".split()
_PREP = "on|under|next to|behind|in front of|near|inside|beside|above".split("|")
_PLACE = (
    "a busy street|a sunny beach|a kitchen counter|a snowy field|an old wooden table|the grass|"
    "a city park|a quiet lake|a crowded market|a dark room|the side of the road|a stone wall"
).split("|")
_TAIL = (
    "in the morning light|on a rainy afternoon|at sunset|with people walking by|"
    "while the wind blows through the trees|in black and white|seen from above|close up"
).split("|")


def _a(phrase: str) -> str:
    return f"{'an' if phrase[0] in 'aeiou' else 'a'} {phrase}"


def make_captions(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct captions of COCO-like length (6 to ~28 words, mean about 11), fixed by
    ``seed``: short labels, one-clause scenes and longer scenes with extra objects."""
    rng = random.Random(seed)
    out: dict[str, None] = {}
    while len(out) < n:
        kind = rng.random()
        noun = _a(f"{rng.choice(_ADJ)} {rng.choice(_NOUN)}")
        scene = f"{rng.choice(_VERB)} {rng.choice(_PREP)} {rng.choice(_PLACE)}"
        if kind < 0.3:
            text = f"a photo of {noun}"
        elif kind < 0.75:
            text = f"{noun} {scene}"
        else:
            extra = " and ".join(
                _a(f"{rng.choice(_ADJ)} {rng.choice(_NOUN)}") for _ in range(rng.randint(1, 2))
            )
            text = f"{noun} {scene} with {extra}"
            if rng.random() < 0.5:
                text += f" {rng.choice(_TAIL)}"
        out.setdefault(text if rng.random() < 0.6 else f"{text} number {rng.randint(1, 99)}")
    return list(out)


def write_images(folder: Path, n: int, seed: int = 0) -> list[Path]:
    """``n`` distinct PNGs of 48-96 px (smooth gradients plus noise) under ``folder``."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        h, w = (int(s) for s in rng.integers(48, 97, size=2))
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([xx / w, yy / h, (xx + yy) / (w + h)], axis=-1) * 200
        pixels = np.clip(base + rng.normal(0, 25, (h, w, 3)), 0, 255).astype(np.uint8)
        path = folder / f"{i // 1000:02d}" / f"img_{i:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


def _timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def _cold_warm(
    encoder: Any, root: Path, call: str, inputs: Any, **kwargs: Any
) -> tuple[dict[str, Any], Any, Any]:
    """Encode ``inputs`` with an empty store, then again with a new wrapper on the same files."""
    runs = []
    for _ in range(2):
        store = EmbeddingStore(encoder.fingerprint, dim=encoder.embed_dim, root=root)
        cached = CachedEncoder(encoder, store)
        seconds, result = _timed(getattr(cached, call), inputs, **kwargs)
        runs.append((seconds, result, cached.stats))
        store.close()
    (cold_s, cold, cold_stats), (warm_s, warm, warm_stats) = runs
    record = {
        "cold_s": round(cold_s, 3),
        "warm_s": round(warm_s, 4),
        "cold_over_warm": round(cold_s / warm_s, 1),
        "cold_misses": cold_stats.misses,
        "warm_hits": warm_stats.hits,
        "warm_misses": warm_stats.misses,
    }
    return record, cold, warm


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-texts", type=int, default=10_000)
    parser.add_argument("--n-images", type=int, default=2_000)
    parser.add_argument("--model", default="ViT-B-32:random")
    parser.add_argument("--device", default=None)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    import torch

    from zsvl.embed import load_model

    encoder = load_model(args.model, device=args.device, cache=False)
    captions = make_captions(args.n_texts)
    with tempfile.TemporaryDirectory(prefix="zsvl-bench-cache-") as tmp:
        root = Path(tmp) / "embeddings"
        image_paths = write_images(Path(tmp) / "images", args.n_images)
        text, t_cold, t_warm = _cold_warm(encoder, root, "encode_texts", captions)
        if not np.array_equal(t_cold, t_warm):
            raise RuntimeError("warm text embeddings differ from the cold ones")
        image, i_cold, i_warm = _cold_warm(
            encoder, root, "encode_images", Path(tmp) / "images", batch_size=64
        )
        if len(i_warm) != len(image_paths) or not np.array_equal(
            i_cold.embeddings, i_warm.embeddings
        ):
            raise RuntimeError("warm image embeddings differ from the cold ones")
        store_bytes = sum(p.stat().st_size for p in root.iterdir())

    result = {
        "benchmark": "cache",
        "model": args.model,
        "fingerprint": encoder.fingerprint,
        "device": str(encoder.device),
        "torch_threads": torch.get_num_threads(),
        "n_texts": len(captions),
        "mean_caption_words": round(float(np.mean([len(c.split()) for c in captions])), 1),
        "n_images": args.n_images,
        "texts": text,
        "images": image,
        "store_bytes": store_bytes,
        "zsvl": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"cache [{args.model}, {result['device']}]: {len(captions)} texts cold "
        f"{text['cold_s']:.1f}s warm {text['warm_s']:.3f}s (x{text['cold_over_warm']}); "
        f"{args.n_images} images cold {image['cold_s']:.1f}s warm {image['warm_s']:.3f}s "
        f"(x{image['cold_over_warm']}) -> {args.out}"
    )
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
