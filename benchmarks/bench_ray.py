"""Benchmark: Ray encoding throughput vs the single-process builder; fill+merge vs one fill.

Encoding: the same toy caption corpus encoded into float16 shards (a) by the single-process
builder (:func:`zsvl.index.encode.encode_to_shards`, torch on all ``--cpus`` threads) and (b) on
a private local Ray cluster with ``--cpus`` CPUs and one 1-CPU encoder actor per CPU (the same
total cores). Reported: captions/s of each, the overhead ratio (b)/(a) (the actors' start and
model load included in (b)), the start time of a pool of actors alone, the cluster start time,
and whether the shards are byte-identical.

Fill: ``--fill-vectors`` clustered unit vectors in ``--dim`` dimensions as float16 shards, one
trained ``IVF<nlist>,Flat`` index; (a) filled in this process (the single-machine builder's fill)
vs (b) ``--cpus`` part indexes filled by Ray tasks and merged in memory, and (c) merged on disk
(``faiss.contrib.ondisk``). Search results of (b) and (c) are checked against (a).

Writes benchmarks/results/ray.json and prints one line per measurement.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _shard_bytes(root: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted((root / "embeddings").glob("emb-*.npy"))]


def bench_encode(tmp: Path, engine, captions: int, shard_size: int, cpus: int) -> dict:
    import torch

    from zsvl.data.captions import CaptionCorpus
    from zsvl.distributed.encode import encode_to_shards_ray
    from zsvl.embed import load_model
    from zsvl.index.encode import encode_to_shards
    from zsvl.toy.captions import write_caption_corpus

    torch.set_num_threads(cpus)
    corpus = CaptionCorpus(write_caption_corpus(tmp / "captions.txt", captions, seed=5))
    encoder = load_model("toy", device="cpu", num_workers=0)
    encoder.encode_texts(["warm up"])
    start = time.perf_counter()
    encode_to_shards(corpus, encoder, tmp / "local", shard_size=shard_size)
    local_s = time.perf_counter() - start

    t = time.perf_counter()
    ray = engine.connect()
    cluster_s = time.perf_counter() - t
    start = time.perf_counter()
    state = encode_to_shards_ray(
        engine, corpus, encoder, tmp / "ray", shard_size=shard_size, model="toy"
    )
    ray_s = time.perf_counter() - start
    # actor start-up: a pool that encodes nothing (same actors, same model load)
    from zsvl.distributed.encode import _pool

    t = time.perf_counter()
    pool, ref, actors = _pool(engine, ray, encoder, (tmp / "ray").resolve(), 256, "toy")
    ray.get([a.__ray_ready__.remote() for a in actors])
    actor_start_s = time.perf_counter() - t
    for a in actors:
        ray.kill(a)
    del pool, ref
    result = {
        "captions": captions,
        "shard_size": shard_size,
        "cpus": cpus,
        "single_process_s": local_s,
        "single_process_captions_per_s": captions / local_s,
        "ray_cluster_start_s": cluster_s,
        "ray_encode_s": ray_s,
        "ray_captions_per_s": captions / ray_s,
        "ray_actor_start_s_measured_apart": actor_start_s,
        "shards": len(state["shards"]),
        "shards_byte_identical": _shard_bytes(tmp / "local") == _shard_bytes(tmp / "ray"),
    }
    result["overhead_ratio"] = (
        result["ray_captions_per_s"] / result["single_process_captions_per_s"]
    )
    return result


def bench_tokenizer(captions: int) -> dict:
    """Captions/s of the ViT-B-32 tokenizer on one thread: the CPU work each encoder actor does
    before its GPU sees a batch (what bounds one actor per GPU)."""
    import open_clip

    from zsvl.toy.captions import caption_corpus

    texts = list(caption_corpus(captions, 1))
    tokenizer = open_clip.get_tokenizer("ViT-B-32")
    tokenizer(texts[:100])
    start = time.perf_counter()
    tokenizer(texts)
    return {
        "captions": captions,
        "vit_b32_tokenizer_captions_per_s_one_thread": captions / (time.perf_counter() - start),
    }


def _write_vectors(folder: Path, n: int, dim: int, shard: int):
    from zsvl.index.shards import ShardSet, write_shard

    folder.mkdir(parents=True, exist_ok=True)
    centres = np.random.default_rng(0).standard_normal((2000, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    infos = []
    for s, lo in enumerate(range(0, n, shard)):
        rng = np.random.default_rng(1 + s)
        hi = min(n, lo + shard)
        x = centres[rng.integers(len(centres), size=hi - lo)]
        x = x + 0.9 / np.sqrt(dim) * rng.standard_normal(x.shape, dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        infos.append(write_shard(folder, s, x, np.arange(lo, hi)))
    return ShardSet(folder, infos, dim)


def bench_fill(tmp: Path, engine, n: int, dim: int, nlist: int, shard: int) -> dict:
    import faiss

    from zsvl.distributed.fill import fill_on_ray
    from zsvl.index.build import _fill

    shards = _write_vectors(tmp / "vec" / "embeddings", n, dim, shard)
    trained = faiss.index_factory(dim, f"IVF{nlist},Flat", faiss.METRIC_INNER_PRODUCT)
    sample = shards.gather(np.sort(np.random.default_rng(0).choice(n, 64 * nlist, replace=False)))
    trained.train(sample)
    queries = shards.gather(np.arange(0, n, n // 1000))
    start = time.perf_counter()
    one = faiss.clone_index(trained)
    _fill(one, shards, 65536)
    one_s = time.perf_counter() - start
    one.nprobe = 8
    want = one.search(queries, 10)[1]
    out = {"vectors": n, "dim": dim, "factory": f"IVF{nlist},Flat", "one_index_fill_s": one_s}
    for how in ("memory", "ondisk"):
        eng = dataclasses.replace(engine, merge=how)
        start = time.perf_counter()
        merged = fill_on_ray(eng, faiss.clone_index(trained), shards, 65536)
        out[f"ray_fill_merge_{how}_s"] = time.perf_counter() - start
        merged.nprobe = 8
        out[f"ray_{how}_same_results"] = bool(np.array_equal(merged.search(queries, 10)[1], want))
        del merged
    out["ratio_memory"] = out["ray_fill_merge_memory_s"] / one_s
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--captions", type=int, default=20000)
    parser.add_argument("--shard-size", type=int, default=2000)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--fill-vectors", type=int, default=400000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--nlist", type=int, default=1024)
    parser.add_argument("--out", default=str(HERE / "results" / "ray.json"))
    args = parser.parse_args()

    from zsvl.distributed import RayEngine

    engine = RayEngine(num_cpus=args.cpus)
    tmp = Path(tempfile.mkdtemp(prefix="zsvl-bench-ray-"))
    try:
        encode = bench_encode(tmp, engine, args.captions, args.shard_size, args.cpus)
        fill = bench_fill(tmp, engine, args.fill_vectors, args.dim, args.nlist, 50000)
        tokenizer = bench_tokenizer(args.captions)
    finally:
        import ray

        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    result = {
        "encode": encode,
        "fill": fill,
        "tokenizer": tokenizer,
        "load_average": os.getloadavg(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    e, f = encode, fill
    print(
        f"encode {e['captions']} toy captions on {e['cpus']} cores: single process "
        f"{e['single_process_captions_per_s']:.0f}/s, Ray {e['ray_captions_per_s']:.0f}/s "
        f"(ratio {e['overhead_ratio']:.2f}, actor start included; a pool alone starts in "
        f"{e['ray_actor_start_s_measured_apart']:.1f} s), identical shards "
        f"{e['shards_byte_identical']}"
    )
    print(
        f"fill {f['vectors']} x {f['dim']} {f['factory']}: one index {f['one_index_fill_s']:.1f}"
        f" s, Ray parts + memory merge {f['ray_fill_merge_memory_s']:.1f} s, + on-disk merge "
        f"{f['ray_fill_merge_ondisk_s']:.1f} s, same results {f['ray_memory_same_results']}/"
        f"{f['ray_ondisk_same_results']}"
    )
    print(
        f"ViT-B-32 tokenizer: {tokenizer['vit_b32_tokenizer_captions_per_s_one_thread']:.0f} "
        f"captions/s on one thread"
    )


if __name__ == "__main__":
    main()
