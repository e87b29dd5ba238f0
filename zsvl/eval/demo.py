"""The offline main job: zero-shot classification of every toy dataset's test split."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from zsvl.eval.metrics import mean_per_class_accuracy, topk_accuracy

__all__ = ["run_toy_demo", "format_table"]

logger = logging.getLogger(__name__)


def run_toy_demo(root: str | Path | None = None, *, model: Any = "toy") -> list[dict[str, Any]]:
    """Build (or reuse) the toy suite, then zero-shot each test split; one metrics dict per dataset."""
    from zsvl.api import load_model
    from zsvl.data.splits import read_split_file
    from zsvl.methods.zeroshot import ZeroShotClassifier
    from zsvl.toy.suite import TOY_DATASETS, build_suite, default_suite_root

    root = build_suite(Path(root) if root is not None else default_suite_root())
    encoder = load_model(model) if isinstance(model, str) else model
    rows = []
    for spec in TOY_DATASETS:
        start = time.perf_counter()
        test = read_split_file(Path(root) / spec.folder / spec.split_file)["test"]
        encoded = encoder.encode_images(test.paths, on_error="raise")
        clf = ZeroShotClassifier(encoder, test.classes, templates=[spec.template]).fit()
        scores = clf.decision_function(encoded.embeddings)
        labels = np.asarray(test.labels)[encoded.indices]
        rows.append({
            "dataset": spec.name,
            "classes": len(test.classes),
            "test_images": int(len(labels)),
            "top1": topk_accuracy(scores, labels, 1),
            "top5": topk_accuracy(scores, labels, 5),
            "mean_per_class": mean_per_class_accuracy(scores, labels),
            "chance": 100.0 / len(test.classes),
            "seconds": time.perf_counter() - start,
        })
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of the demo rows."""
    head = "| dataset | classes | test images | top-1 | top-5 | mean/class | chance |"
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(
            f"| {r['dataset']} | {r['classes']} | {r['test_images']} | {r['top1']:.1f} | "
            f"{r['top5']:.1f} | {r['mean_per_class']:.1f} | {r['chance']:.1f} |"
        )
    return "\n".join(lines)
