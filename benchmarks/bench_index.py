"""Benchmark: a 1M x 512 caption-index build under a 1 GB budget, and search at recall@10 >= 0.95.

Data: 1,000,000 random unit vectors in 512-d stored as float16 shards (the form the encoder stage
writes), drawn from a mixture of 10,000 random directions with isotropic noise (cosine to the
centre ~0.75), as text embeddings are clustered; queries are 10,000 fresh draws from the same
mixture. (Uniform random vectors on the sphere have no neighbourhood structure: no IVF index
beats a full scan on them; see docs/scaling.md.)

Steps: (1) write the shards; (2) build the auto index with max_memory=1G in a child process,
recording wall time and peak RSS (the filled index stays within max_memory; the transient
training sample has its own budget, train_memory="auto", and adds to the peak); (3) search the 10,000 queries with the tuned parameters
(through CaptionIndex.search, captions included); (4) recall@10 against exact search and exact
search speed (faiss IndexFlatIP over float32 in RAM, 2 GB, outside the budget) on the first
``--exact-queries`` queries; (5) a naive per-query numpy loop on ``--naive-queries`` queries.
Writes benchmarks/results/index.json and prints one line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def mixture(n: int, dim: int, centres: np.ndarray, seed: int, noise: float = 0.9) -> np.ndarray:
    """``n`` unit vectors: a random centre plus isotropic noise of norm ~``noise``."""
    rng = np.random.default_rng(seed)
    x = centres[rng.integers(len(centres), size=n)]
    x = x + (noise / np.sqrt(dim)) * rng.standard_normal((n, dim), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def write_data(out: Path, n: int, dim: int, shard: int, centres: np.ndarray) -> float:
    from zsvl.index.shards import write_shard
    from zsvl.index.storage import write_state

    start = time.perf_counter()
    folder = out / "embeddings"
    folder.mkdir(parents=True, exist_ok=True)
    infos = []
    for s, lo in enumerate(range(0, n, shard)):
        hi = min(n, lo + shard)
        ids = np.arange(lo, hi, dtype=np.int64)
        vec = mixture(hi - lo, dim, centres, seed=1 + s)
        infos.append(write_shard(folder, s, vec, ids, [f"vector {i}" for i in ids]).as_dict())
    write_state(
        out,
        {
            "settings": {
                "corpus": {"path": "synthetic"},
                "encoder": {"fingerprint": f"synthetic-{dim}", "embed_dim": dim},
                "shard_size": shard,
            },
            "shards": infos,
            "encoded": True,
            "corpus_stats": {"kept": n},
            "encode_seconds": 0.0,
            "model": None,
        },
    )
    return time.perf_counter() - start


def child_build(out: str, max_memory: str, tune_queries: int) -> None:
    """Runs in a fresh process so that ru_maxrss is the build's own peak."""
    from zsvl.index.build import build_from_shards

    start = time.perf_counter()
    manifest = build_from_shards(
        out,
        factory="auto",
        max_memory=max_memory,
        target_recall=0.95,
        k=10,
        tune_queries=tune_queries,
    )
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_rss_bytes": peak,
                "factory": manifest["factory"],
                "params": manifest["search_params"],
                "tuning": manifest["tuning"],
                "train": manifest["build"]["train"],
                "timings": manifest["timings"],
                "index_bytes": manifest["index_bytes"],
            }
        )
    )


def recall10(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth, strict=True)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--exact-queries", type=int, default=2000)
    parser.add_argument("--naive-queries", type=int, default=20)
    parser.add_argument("--max-memory", default="1G")
    parser.add_argument("--tune-queries", type=int, default=1000)
    parser.add_argument("--workdir", default=None, help="default: a temporary folder")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(HERE / "results" / "index.json"))
    args = parser.parse_args()
    if args.child:
        child_build(args.child, args.max_memory, args.tune_queries)
        return
    import faiss

    work = Path(args.workdir or tempfile.mkdtemp(prefix="zsvl-bench-index-"))
    out = work / "index"
    shutil.rmtree(out, ignore_errors=True)
    centres = np.random.default_rng(0).standard_normal((10_000, args.dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    write_s = write_data(out, args.n, args.dim, 65536, centres)
    proc = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            str(out),
            "--max-memory",
            args.max_memory,
            "--tune-queries",
            str(args.tune_queries),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    build = json.loads(proc.stdout.strip().splitlines()[-1])

    from zsvl.index.search import CaptionIndex

    index = CaptionIndex.load(out)
    q = mixture(args.queries, args.dim, centres, seed=10_000)
    start = time.perf_counter()
    res = index.search(q, 10)
    search_s = time.perf_counter() - start
    start = time.perf_counter()
    index.index.search(q, 10)
    raw_s = time.perf_counter() - start

    stored = np.concatenate(
        [
            np.asarray(index.shards.embeddings(p), dtype=np.float32)
            for p in range(len(index.shards.shards))
        ]
    )
    flat = faiss.IndexFlatIP(args.dim)
    flat.add(stored)
    ne = args.exact_queries
    start = time.perf_counter()
    _, truth = flat.search(q[:ne], 10)
    exact_s = time.perf_counter() - start
    recall = recall10(res.ids[:ne], truth)

    start = time.perf_counter()
    naive = []
    for v in q[: args.naive_queries]:
        scores = stored @ v
        top = np.argpartition(-scores, 10)[:10]
        naive.append(top[np.argsort(-scores[top])])
    naive_s = time.perf_counter() - start
    assert recall10(np.array(naive), truth[: args.naive_queries]) == 1.0

    qps = args.queries / search_s
    exact_qps = ne / exact_s
    naive_qps = args.naive_queries / naive_s
    result = {
        "benchmark": "index",
        "n": args.n,
        "dim": args.dim,
        "data": "10k-centre mixture, unit",
        "storage": "float16 shards",
        "max_memory": args.max_memory,
        "shard_write_seconds": write_s,
        "build": build,
        "build_peak_rss_mib": build["peak_rss_bytes"] / 2**20,
        "queries": args.queries,
        "search_seconds": search_s,
        "qps": qps,
        "qps_faiss_only": args.queries / raw_s,
        "recall_at_10": recall,
        "recall_queries": ne,
        "exact_qps_flat_float32": exact_qps,
        "speedup_vs_exact": qps / exact_qps,
        "naive_loop_qps": naive_qps,
        "speedup_vs_naive": qps / naive_qps,
        "threads": faiss.omp_get_max_threads(),
        "load_average": os.getloadavg(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"index: {args.n} x {args.dim} -> {build['factory']} ({build['params']}), build "
        f"{build['seconds']:.0f}s, peak RSS {result['build_peak_rss_mib']:.0f} MiB "
        f"(index budget {args.max_memory}; trained on {build['train']['points']} vectors, "
        f"{build['train']['points_per_list']}/list); tuned recall@10 "
        f"{build['tuning']['recall']:.3f} on {build['tuning']['queries']} held-out vectors; "
        f"{args.queries} fresh queries {qps:.0f} q/s at recall@10 {recall:.3f}; exact "
        f"{exact_qps:.0f} q/s ({result['speedup_vs_exact']:.1f}x), naive loop "
        f"{naive_qps:.1f} q/s ({result['speedup_vs_naive']:.0f}x)"
    )


if __name__ == "__main__":
    main()
