"""Benchmark: FuDD stage 2 (the set union) on 10,000 images x 200 classes, k = 10.

Synthetic but structured: 200 classes in 20 groups of similar classes (like dog breeds), images
near their class, so stage 1 confuses classes within a group. The full FuDDClassifier is fitted
once on the images with an in-process LLM that counts requests (one per class pair asked) and
answers 4 attributes per pair; a quarter of the descriptions are drawn from 8 generic texts
per class, the rest are specific to the pair, so texts repeat across pairs as in the
reference's pair files (DTD: 6,790 class texts, 4,534 distinct).
Then stage 2 is timed, side by side in one run:
- zsvl: ``rescore_topk`` (pair-sum embedding_bag minus repeated occurrences; no image loop);
- reference (FuDD's style): for each image, for each candidate, the Python set union of its
  texts over the other candidates, mean of their embeddings, normalise, dot; in torch like its
  code, and the same loops in numpy.
The pair table is built once per fit and timed separately, as the reference's text-embedding
cache is filled before its loop. Also reported: how many candidates repeat a text, and how many
predictions the union changes against summing per-pair sums (the old zsvl semantics).
Writes benchmarks/results/fudd.json and prints a one-line summary.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import time
from pathlib import Path

import numpy as np

from zsvl.methods.base import top_k
from zsvl.methods.fudd import FuDDClassifier, cooccurring_pairs, rescore_topk
from zsvl.models.base import EncodedImages

_PAIR = re.compile(r"How does a (class\d+) look different from a (class\d+)")


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


class BenchEncoder:
    """Texts -> vectors: "a photo of a classNNN." is the class vector; a description of class a
    is a fixed random vector near class a's (seeded by the text)."""

    def __init__(self, class_emb: np.ndarray) -> None:
        self.class_emb = class_emb
        self.texts = 0

    embed_dim = property(lambda self: self.class_emb.shape[1])
    logit_scale = property(lambda self: 100.0)
    fingerprint = property(lambda self: "bench-fudd")

    def encode_texts(self, texts, *, batch_size: int = 256) -> np.ndarray:
        self.texts += len(texts)
        out = np.empty((len(texts), self.embed_dim), np.float32)
        for i, t in enumerate(texts):
            c = int(re.search(r"class(\d+)", t, re.IGNORECASE).group(1))
            seed = int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "little")
            noise = np.random.default_rng(seed).standard_normal(self.embed_dim)
            scale = 0.0 if t.lower().startswith("a photo of") else 0.6 / np.sqrt(self.embed_dim)
            out[i] = unit(self.class_emb[c] + scale * noise)
        return out

    def encode_images(self, images, **kwargs) -> EncodedImages:  # not used
        raise NotImplementedError


class CountingLLM:
    """An in-process LLM client: one answer of ``n_attr`` attributes per pair; counts calls."""

    def __init__(self, n_attr: int) -> None:
        self.n_attr = n_attr
        self.calls = 0

    def complete(self, messages) -> str:
        self.calls += 1
        a, b = _PAIR.search(messages[-1]["content"]).groups()
        return json.dumps(
            [
                {
                    "attribute": f"attr{i}",
                    "first": f"{a} trait {_pick(a, b, i)}",
                    "second": f"{b} trait {_pick(b, a, i)}",
                }
                for i in range(self.n_attr)
            ]
        )


def _pick(a: str, b: str, i: int, pool: int = 8) -> str:
    """A description of ``a`` in pair {a, b}: one of ``pool`` generic ones a quarter of the
    time (fixed per pair), else specific to the pair."""
    h = hashlib.blake2b(f"{a}|{b}|{i}".encode(), digest_size=4).digest()
    return f"generic {h[1] % pool}" if h[0] % 4 == 0 else f"vs {b} {i}"


def loop_stage2(X, topk, descs, E) -> np.ndarray:
    """The reference, in torch like FuDD's code: loops over images and candidates; a
    candidate's texts are the set union over its pairs; mean of their embeddings."""
    import torch

    Xt, Et = torch.from_numpy(X), torch.from_numpy(E)
    out = torch.empty(topk.shape)
    for n in range(len(X)):
        cands = topk[n].tolist()
        ws = []
        for c in cands:
            union = set()
            for o in cands:
                if o != c:
                    union.update(descs[(c, o)])
            w = Et[list(union)].mean(0)
            ws.append(w / w.norm())
        out[n] = torch.stack(ws) @ Xt[n]
    return out.numpy()


def loop_stage2_numpy(X, topk, descs, E) -> np.ndarray:
    """The same loops with numpy arrays (lower per-call overhead than torch)."""
    out = np.empty(topk.shape, np.float32)
    for n in range(len(X)):
        cands = topk[n].tolist()
        for j, c in enumerate(cands):
            union = set()
            for o in cands:
                if o != c:
                    union.update(descs[(c, o)])
            w = E[list(union)].mean(axis=0)
            out[n, j] = X[n] @ (w / np.linalg.norm(w))
    return out


def pair_sum_stage2(X, topk, table) -> np.ndarray:
    """The old zsvl semantics for comparison: sum of per-pair sums (repeats counted per pair)."""
    import torch
    import torch.nn.functional as F

    k = topk.shape[1]
    others = np.array([[j for j in range(k) if j != i] for i in range(k)])
    rows = torch.as_tensor(table.lookup(topk[:, :, None], topk[:, others])).long()
    W = F.embedding_bag(rows.reshape(-1, k - 1), torch.as_tensor(table.sums), mode="sum")
    W = W.view(len(X), k, -1)
    return (torch.bmm(W, torch.as_tensor(X)[:, :, None])[..., 0] / W.norm(dim=-1)).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--classes", type=int, default=200)
    parser.add_argument("--groups", type=int, default=20)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--descriptions", type=int, default=4, help="attributes per pair")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "fudd.json"))
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    D, C = args.dim, args.classes
    centres = unit(rng.standard_normal((args.groups, D)))
    group = np.arange(C) % args.groups
    class_emb = unit(centres[group] + 0.3 * unit(rng.standard_normal((C, D))))
    labels = rng.integers(C, size=args.images)
    X = unit(class_emb[labels] + 1.6 * unit(rng.standard_normal((args.images, D))))
    names = [f"class{c:03d}" for c in range(C)]

    enc, llm = BenchEncoder(class_emb), CountingLLM(args.descriptions)
    start = time.perf_counter()
    clf = FuDDClassifier(enc, names, llm=llm, k=args.k).fit(X)  # stage 1, pair requests
    fit_s = time.perf_counter() - start
    scores = clf.decision_function(X)
    topk, _ = top_k(clf.stage1_scores(X), args.k)
    pairs = cooccurring_pairs(topk, C)

    table_s, _ = _timed(clf._rebuild)  # once per fit, like the reference's embedding cache
    table = clf.table_
    zsvl_s = min(_timed(lambda: rescore_topk(X, topk, table))[0] for _ in range(args.repeat))
    s2 = rescore_topk(X, topk, table)[0]
    descs = {}  # (a, b) -> text ids of a in pair {a, b}: the reference's per-pair prompt lists
    for i, j in pairs.tolist():
        for a, b, side in ((i, j, 1), (j, i, 2)):
            descs[(a, b)] = [clf._text_row[t[side]] for t in clf.pair_store_.pair(i, j)]
    E = clf.text_embeddings_
    loop_s, ref = _timed(lambda: loop_stage2(X, topk, descs, E))
    loop_np_s, ref_np = _timed(lambda: loop_stage2_numpy(X, topk, descs, E))
    err = float(max(np.abs(s2 - ref).max(), np.abs(s2 - ref_np).max()))
    assert err < 1e-4, err
    assert np.allclose(np.take_along_axis(scores, topk, 1), s2, atol=1e-5)
    occurrences = [sum(len(descs[(c, o)]) for o in t if o != c) for t in topk.tolist() for c in t]
    distinct = [
        len({d for o in t if o != c for d in descs[(c, o)]}) for t in topk.tolist() for c in t
    ]
    repeats = float(np.mean(np.array(distinct) < np.array(occurrences)) * 100)
    old = pair_sum_stage2(X, topk, table)
    changed = float((old.argmax(1) != s2.argmax(1)).mean() * 100)
    acc1 = float((clf.stage1_scores(X).argmax(1) == labels).mean() * 100)
    result = {
        "images": args.images,
        "classes": C,
        "k": args.k,
        "descriptions_per_pair": args.descriptions,
        "generic_texts_per_class": 8,
        "generic_share": 0.25,
        "dim": D,
        "torch_threads": torch.get_num_threads(),
        "zsvl_stage2_s": zsvl_s,
        "zsvl_pair_table_build_s": table_s,
        "per_image_loop_torch_s": loop_s,
        "speedup": loop_s / zsvl_s,
        "per_image_loop_numpy_s": loop_np_s,
        "speedup_vs_numpy_loop": loop_np_s / zsvl_s,
        "max_abs_diff": err,
        "candidates_with_repeated_texts_pct": repeats,
        "mean_texts_per_candidate": float(np.mean(occurrences)),
        "mean_distinct_texts_per_candidate": float(np.mean(distinct)),
        "predictions_changed_vs_pair_sums_pct": changed,
        "llm_pair_requests": llm.calls,
        "pairs_cooccurring": int(len(pairs)),
        "all_pairs": C * (C - 1) // 2,
        "texts_encoded": enc.texts,
        "fit_s": fit_s,
        "stage1_top1": acc1,
        "fudd_top1": float((scores.argmax(1) == labels).mean() * 100),
        "topk_recall": float((topk == labels[:, None]).any(1).mean() * 100),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"fudd stage 2 {args.images} images x {C} classes, k={args.k}, {args.descriptions} "
        f"per pair: zsvl {zsvl_s:.3f}s (+ table {table_s:.3f}s once) vs per-image loop "
        f"{loop_s:.2f}s (torch) = "
        f"{loop_s / zsvl_s:.1f}x, {loop_np_s:.2f}s (numpy) = {loop_np_s / zsvl_s:.1f}x; "
        f"LLM pair requests {llm.calls} vs all pairs {result['all_pairs']} "
        f"({100 * llm.calls / result['all_pairs']:.1f}%); {repeats:.0f}% of candidates repeat "
        f"a text, the union changes {changed:.1f}% of predictions vs per-pair sums"
    )


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


if __name__ == "__main__":
    main()
