"""Few-shot curves on the toy suite: zero-shot, Tip-Adapter, GDA, GDA-EM and TEEN.

For every toy dataset, K in ``shots`` and seed in ``seeds`` (CoOp: 1/2/4/8/16 shots, seeds 1-3):

- shots: K images per class from the train split (``sample_few_shot``), each encoded as 10
  augmented views (``encode_shots``; every image's views are encoded once per dataset and
  shared by all K and seeds); validation: min(K, 4) images per class from the val split;
- "Tip-Adapter" (beta, alpha on Tip's 200 x 20 grid) and "GDA" (alpha on GDA's grid) are tuned
  on that few-shot validation set only (``fit_and_evaluate``); the test split is scored once;
- "GDA-EM (no labels)" is the transductive EM on the unlabelled test features, started from
  the zero-shot posteriors with fixed alpha = 1: it uses no shots, so it is flat in K;
- "NCM" / "NCM+TEEN" (base-to-new, where TEEN applies): even-numbered classes are base classes
  with prototypes from the whole train split, odd-numbered classes are new with prototypes from
  the K shots; nearest-prototype accuracy over all classes on the new classes' test images,
  without and with TEEN's calibration of the new prototypes.

Rows: one per (dataset, method, K) with ``top1_mean``, ``top1_std`` (population std over the
seeds), ``top1_per_seed`` and the hyperparameters each seed chose.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zsvl.arrays import l2_normalize
from zsvl.eval.metrics import topk_accuracy

__all__ = ["run_fewshot_demo", "format_fewshot_table", "FEWSHOT_METHODS"]

logger = logging.getLogger(__name__)

FEWSHOT_METHODS = (
    "Zero-shot",
    "Tip-Adapter",
    "GDA",
    "GDA-EM (no labels)",
    "NCM (new)",
    "NCM+TEEN (new)",
)


def run_fewshot_demo(
    root: str | Path,
    encoder: Any,
    *,
    shots: Sequence[int] = (1, 2, 4, 8, 16),
    seeds: Sequence[int] = (1, 2, 3),
    datasets: Sequence[str] | None = None,
    n_views: int = 10,
    manifest_dir: str | Path | None = None,
) -> list[dict[str, Any]]:
    """Run the few-shot methods on the toy suite under ``root`` (built if missing).

    encoder : an Encoder (``zsvl.load_model("toy")`` caches every view on disk).
    datasets : toy dataset names (default all). Returns one dict per (dataset, method, K).
    manifest_dir : where each (dataset, K, seed) draw is saved as a few-shot manifest
        ``<dataset>_k<K>_seed<seed>.json`` (default ``<root>/fewshot``).
    """
    from zsvl.toy.suite import TOY_DATASETS, build_suite

    root = Path(build_suite(Path(root)))
    manifests = Path(manifest_dir) if manifest_dir is not None else root / "fewshot"
    rows: list[dict[str, Any]] = []
    for spec in TOY_DATASETS:
        if datasets is not None and spec.name not in datasets:
            continue
        start = time.perf_counter()
        rows += _run_dataset(root, spec, encoder, list(shots), list(seeds), n_views, manifests)
        logger.info("few-shot demo: %s done in %.1f s", spec.name, time.perf_counter() - start)
    return rows


def _run_dataset(
    root: Path,
    spec: Any,
    encoder: Any,
    shots: list[int],
    seeds: list[int],
    n_views: int,
    manifests: Path,
) -> list[dict[str, Any]]:
    from zsvl.data.augment import AugmentConfig, encode_shots
    from zsvl.data.fewshot import sample_few_shot, save_manifest
    from zsvl.data.splits import read_split_file
    from zsvl.eval.protocol import fit_and_evaluate
    from zsvl.methods.zeroshot import ZeroShotClassifier

    splits = read_split_file(root / spec.folder / spec.split_file)
    zs = ZeroShotClassifier(encoder, splits["train"].classes, templates=[spec.template]).fit()
    test = splits["test"]
    X_test = encoder.encode_images(test.paths).embeddings
    y_test = np.asarray(test.labels)
    draws = {(k, s): sample_few_shot(splits, k, s, dataset=spec.name) for k in shots for s in seeds}
    for (k, s), draw in draws.items():  # the exact shots, reusable and citable
        save_manifest(draw, manifests / f"{spec.name}_k{k}_seed{s}.json")
    train_paths = list(splits["train"].paths)
    row_of = {p: i for i, p in enumerate(train_paths)}
    shot_emb = encode_shots(
        encoder, train_paths, config=AugmentConfig(n_views=n_views), plain=False
    )
    val_paths = sorted({p for d in draws.values() for p in d.val_paths})
    val_emb = dict(zip(val_paths, encoder.encode_images(val_paths).embeddings, strict=True))
    zs_top1 = topk_accuracy(zs.decision_function(X_test), y_test, 1)
    em = fit_and_evaluate("gda-em", zs, None, None, test=(X_test, y_test))
    results: dict[tuple[str, int], list[tuple[float, dict[str, Any]]]] = {}
    for (k, _seed), draw in draws.items():
        idx = np.array([row_of[p] for p in draw.train_paths])
        shots_k = shot_emb.subset(idx)
        y_k = np.asarray(draw.train_labels)
        val = (np.stack([val_emb[p] for p in draw.val_paths]), np.asarray(draw.val_labels))
        found = {"Zero-shot": (zs_top1, {}), "GDA-EM (no labels)": (em["top1"], em["params"])}
        for name, method in (("Tip-Adapter", "tip"), ("GDA", "gda")):
            rec = fit_and_evaluate(method, zs, shots_k, y_k, val=val, test=(X_test, y_test))
            found[name] = (rec["top1"], rec["params"])
        found.update(_teen_rows(shot_emb, splits["train"].labels, shots_k, y_k, X_test, y_test))
        for name, value in found.items():
            results.setdefault((name, k), []).append(value)
    return [
        _row(spec.name, name, k, seeds, values, len(zs.classes_))
        for (name, k), values in sorted(
            results.items(), key=lambda kv: (FEWSHOT_METHODS.index(kv[0][0]), kv[0][1])
        )
    ]


def _teen_rows(
    all_shots: Any,
    all_labels: Sequence[int],
    shots_k: Any,
    y_k: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
) -> dict[str, tuple[float, dict]]:
    """Base-to-new nearest-prototype accuracy on the new classes, without and with TEEN."""
    from zsvl.methods.teen import TEENCalibrator

    labels = np.asarray(all_labels)
    C = int(labels.max()) + 1
    base, new = np.arange(0, C, 2), np.arange(1, C, 2)
    means = all_shots.views.mean(1)  # (n_train, D) per-image view means
    protos = np.zeros((C, means.shape[1]), np.float32)
    np.add.at(protos, labels, means)  # base classes: the whole train split
    k_means = shots_k.views.mean(1)
    k_protos = np.zeros_like(protos)
    np.add.at(k_protos, y_k, k_means)  # new classes: the K shots only
    protos[new] = k_protos[new]
    protos = l2_normalize(protos)
    on_new = np.isin(y_test, new)
    plain = topk_accuracy(X_test[on_new] @ protos.T, y_test[on_new], 1)
    calibrated = protos.copy()
    calibrated[new] = l2_normalize(TEENCalibrator().fit(protos[base]).transform(protos[new]))
    teen = topk_accuracy(X_test[on_new] @ calibrated.T, y_test[on_new], 1)
    return {"NCM (new)": (plain, {}), "NCM+TEEN (new)": (teen, {"lam": 0.5, "tau": 16.0})}


def _row(
    dataset: str,
    method: str,
    k: int,
    seeds: Sequence[int],
    values: list[tuple[float, dict[str, Any]]],
    n_classes: int,
) -> dict[str, Any]:
    top1 = np.array([v for v, _ in values])
    return {
        "dataset": dataset,
        "classes": n_classes,
        "method": method,
        "shots": k,
        "seeds": list(seeds),
        "top1_mean": float(top1.mean()),
        "top1_std": float(top1.std()),
        "top1_per_seed": [float(v) for v in top1],
        "params_per_seed": [p for _, p in values],
    }


def format_fewshot_table(rows: list[dict[str, Any]]) -> str:
    """Markdown: one table per dataset, methods as rows, K as columns, "mean ± std" cells."""
    out: list[str] = []
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        mine = [r for r in rows if r["dataset"] == dataset]
        ks = sorted({r["shots"] for r in mine})
        out.append(
            f"**{dataset}** ({mine[0]['classes']} classes; top-1 %, mean ± std over "
            f"seeds {', '.join(str(s) for s in mine[0]['seeds'])})"
        )
        out.append("")
        out.append("| method | " + " | ".join(f"{k}-shot" for k in ks) + " |")
        out.append("|---|" + "---:|" * len(ks))
        for method in dict.fromkeys(r["method"] for r in mine):
            cells = {r["shots"]: r for r in mine if r["method"] == method}
            line = " | ".join(
                f"{cells[k]['top1_mean']:.1f} ± {cells[k]['top1_std']:.1f}" if k in cells else ""
                for k in ks
            )
            out.append(f"| {method} | {line} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"
