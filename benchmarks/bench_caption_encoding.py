"""Benchmark: caption encoding throughput on the toy corpus, truncated vs the full context.

The index builder encodes captions with ``encoder.encode_texts``, which sorts texts by length and
cuts each batch's padding after its longest text (zsvl.models.textenc). This compares captions/s
with open_clip's full 77-token forward on the same captions and batch size, with the shipped toy
CLIP (``--model``; ViT-B-32:random gives the same comparison at CLIP size, slowly on a CPU).
Writes benchmarks/results/caption_encoding.json and prints one line.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="toy")
    parser.add_argument("--n", type=int, default=20_000, help="captions of the toy corpus")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--out", default=str(HERE / "results" / "caption_encoding.json"))
    args = parser.parse_args()

    import torch
    import torch.nn.functional as F

    from zsvl.embed import load_model
    from zsvl.toy.captions import caption_corpus

    enc = load_model(args.model, device="cpu", cache=False)
    texts = list(caption_corpus(args.n, seed=0))
    tokens = enc.tokenizer(texts)
    bs = args.batch_size

    def full() -> np.ndarray:
        with torch.inference_mode():
            parts = [
                F.normalize(enc.model.encode_text(tokens[i : i + bs]).float(), dim=-1)
                for i in range(0, len(texts), bs)
            ]
        return torch.cat(parts).numpy()

    enc.encode_texts(texts[:bs], batch_size=bs)  # warm-up
    t = time.perf_counter()
    ref = full()
    full_s = time.perf_counter() - t
    t = time.perf_counter()
    out = enc.encode_texts(texts, batch_size=bs)
    trunc_s = time.perf_counter() - t
    lengths = (tokens != 0).sum(1).float()
    result = {
        "benchmark": "caption_encoding",
        "model": args.model,
        "captions": args.n,
        "batch_size": bs,
        "mean_tokens": float(lengths.mean()),
        "max_tokens": int(lengths.max()),
        "captions_per_s_full_context": args.n / full_s,
        "captions_per_s_truncated": args.n / trunc_s,
        "speedup": full_s / trunc_s,
        "max_abs_diff": float(np.abs(out - ref).max()),
        "threads": torch.get_num_threads(),
        "load_average": os.getloadavg(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(
        f"caption encoding ({args.model}, {args.n} toy captions, mean {result['mean_tokens']:.1f} "
        f"tokens): full context {result['captions_per_s_full_context']:.0f}/s, truncated "
        f"{result['captions_per_s_truncated']:.0f}/s ({result['speedup']:.1f}x), max diff "
        f"{result['max_abs_diff']:.1e}"
    )


if __name__ == "__main__":
    main()
