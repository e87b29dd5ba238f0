"""The suite runner: encode each split once, run every (method, shots, seed), one JSON record each.

Records go to ``<out>/<dataset>/<method>/k<shots>[_s<seed>].json`` and are written atomically;
a record that exists is skipped, so an interrupted run resumes. A failing dataset or method is
recorded with its error and the rest goes on.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from zsvl._atomic import atomic_write_json
from zsvl._version import __version__
from zsvl.data.check import check_dataset
from zsvl.data.datasets import DatasetInfo, load_dataset
from zsvl.data.splits import Split
from zsvl.eval.features import split_features
from zsvl.eval.metrics import mean_per_class_accuracy, topk_accuracy
from zsvl.eval.registry import MethodContext, MethodEntry, get_method
from zsvl.eval.suite import Suite
from zsvl.models.base import Encoder
from zsvl.text.templates import load_templates

__all__ = ["run_suite", "record_path", "iter_records"]

logger = logging.getLogger(__name__)


def record_path(out: Path, dataset: str, method: str, shots: int, seed: int | None) -> Path:
    tail = f"k{shots}" + (f"_s{seed}" if seed is not None else "")
    return Path(out) / dataset / method / f"{tail}.json"


def iter_records(out: str | Path) -> Iterator[dict[str, Any]]:
    """Every run record under a results folder (reports read this), dataset failures included.

    Records live at ``<dataset>/<method>/*.json``; folders starting with "_" hold scratch files
    (few-shot manifests, LLM caches) and are not records.
    """
    root = Path(out)
    paths = [p for p in sorted(root.glob("*/*/*.json")) if not p.parts[-3].startswith("_")]
    paths += sorted(root.glob("*/_dataset_error.json"))
    for path in paths:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            logger.warning("Skipping unreadable record %s (%s)", path, exc)
            continue
        record.setdefault("method", "(dataset)")
        yield record


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    atomic_write_json(path, payload, sort_keys=False, default=_jsonable)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _runs(entry: MethodEntry, suite: Suite) -> list[tuple[int, int | None]]:
    if entry.uses_shots:
        return [(k, s) for k in suite.shots if k > 0 for s in suite.seeds]
    if 0 not in suite.shots:
        return []
    return [(0, s) for s in suite.seeds] if entry.seeded else [(0, None)]


def run_suite(
    suite: Suite,
    *,
    data_root: str | Path,
    encoder: Encoder,
    out: str | Path,
    model_spec: str = "",
    workdir: str | Path | None = None,
) -> list[dict[str, Any]]:
    """Run ``suite``; returns the records written in this call (skipped ones are not repeated)."""
    out = Path(out)
    entries = [get_method(name) for name in suite.methods]  # unknown names fail before any work
    written = []
    for info in suite.datasets:
        try:
            written += _run_dataset(
                info, suite, entries, data_root, encoder, out, model_spec, workdir
            )
        except Exception as exc:  # noqa: BLE001 - one dataset's failure is recorded, the rest runs
            logger.error("Dataset %s failed: %s", info.name, exc)
            _write_json(
                out / info.name / "_dataset_error.json",
                {"dataset": info.name, "status": "failed", "error": str(exc)},
            )
    return written


def _run_dataset(
    info: DatasetInfo,
    suite: Suite,
    entries: list[MethodEntry],
    data_root: str | Path,
    encoder: Encoder,
    out: Path,
    model_spec: str,
    workdir: str | Path | None,
) -> list[dict[str, Any]]:
    todo = [
        (e, k, s)
        for e in entries
        for k, s in _runs(e, suite)
        if not record_path(out, info.name, e.name, k, s).exists()
    ]
    if not todo:
        logger.info("%s: all records present, skipping", info.name)
        return []
    report = check_dataset(info, data_root, decode=False)
    if not report.ok:
        raise ValueError(report.summary())
    splits = load_dataset(info, data_root)
    test = split_features(encoder, info.name, splits["test"])
    whole: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def features(split: Split) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings and labels of a split: whole splits from the split file, subsets per image."""
        if split is splits.get(split.name):
            if split.name not in whole:
                f = split_features(encoder, info.name, split)
                whole[split.name] = (f.X, f.y)
            return whole[split.name]
        enc = encoder.encode_images(split.paths, on_error="skip")
        return enc.embeddings, np.asarray(split.labels, dtype=np.int64)[enc.indices]

    templates = load_templates(info.templates)
    written = []
    for entry, shots, seed in _progress(todo, info.name):
        ctx = MethodContext(
            encoder=encoder,
            dataset=info,
            classes=splits["test"].classes,
            templates=templates,
            X_test=test.X,
            test_sources=test.paths,
            train=splits["train"],
            val=splits["val"],
            features=features,
            shots=shots,
            seed=seed if seed is not None else 0,
            params=dict(suite.params.get(entry.name, {})),
            workdir=Path(workdir) if workdir else out / "_work",
            data_root=Path(data_root),
        )
        record = _run_one(entry, ctx, test.y, model_spec, encoder)
        record["dataset"], record["seed"] = info.name, seed
        scores = record.pop("_scores", None)
        if record["status"] == "ok" and scores is not None:
            record["examples"] = _examples(scores, test, ctx.classes.names)
        record["n_test"], record["n_skipped_images"] = len(test), len(test.failures)
        _write_json(record_path(out, info.name, entry.name, shots, seed), record)
        written.append(record)
    return written


def _run_one(
    entry: MethodEntry, ctx: MethodContext, y_test: np.ndarray, model_spec: str, encoder: Encoder
) -> dict[str, Any]:
    base = {
        "method": entry.name,
        "shots": ctx.shots,
        "model": model_spec,
        "encoder_fingerprint": encoder.fingerprint,
        "zsvl_version": __version__,
        "params": ctx.params,
    }
    start = time.perf_counter()
    try:
        result = entry.run(ctx)
    except Exception as exc:  # noqa: BLE001 - recorded, the suite goes on
        logger.error("%s on %s (k=%d) failed: %s", entry.name, ctx.dataset.name, ctx.shots, exc)
        return {
            **base,
            "status": "failed",
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(limit=5),
            "wall_time_s": time.perf_counter() - start,
        }
    if result.predicted_names is not None:
        from zsvl.eval.vic_metrics import vic_metrics

        names = list(ctx.classes.names)
        found = vic_metrics(result.predicted_names, y_test, names)
        metrics = {k: v for k, v in found.items() if isinstance(v, (int, float)) or v is None}
        return {
            **base,
            "status": "ok",
            "primary_metric": "cluster_accuracy",
            "metrics": metrics,
            "hyperparameters": result.hyperparameters,
            "protocol": result.protocol,
            "explanations": [],
            "wall_time_s": time.perf_counter() - start,
            "_scores": None,
        }
    scores = np.asarray(result.scores)
    expected = (len(y_test), len(ctx.classes))
    if scores.shape != expected:
        return {
            **base,
            "status": "failed",
            "wall_time_s": time.perf_counter() - start,
            "error": f"scores of shape {scores.shape}, expected {expected}",
        }
    metrics = {
        "top1": topk_accuracy(scores, y_test, 1),
        "top5": topk_accuracy(scores, y_test, 5),
        "mean_per_class": mean_per_class_accuracy(scores, y_test),
        **result.metrics,
    }
    for name, (extra, k) in result.extra_scores.items():
        metrics[name] = topk_accuracy(np.asarray(extra), y_test, k)
    return {
        **base,
        "status": "ok",
        "primary_metric": "top1",
        "metrics": metrics,
        "hyperparameters": result.hyperparameters,
        "protocol": result.protocol,
        "explanations": result.explanations[:8],
        "wall_time_s": time.perf_counter() - start,
        "_scores": scores,
    }


def _examples(scores: np.ndarray, test: Any, names: tuple[str, ...], n: int = 4) -> list[dict]:
    """The first ``n`` test images (spread over the split) with truth and top-3 predictions."""
    picks = np.linspace(0, len(test) - 1, num=min(n, len(test)), dtype=int) if len(test) else []
    out = []
    for i in picks:
        top = np.argsort(-scores[i])[:3]
        out.append(
            {
                "source": test.paths[i],
                "truth": names[test.y[i]],
                "top": [[names[c], float(scores[i, c])] for c in top],
            }
        )
    return out


def _progress(items: list, name: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(items, desc=name, unit="run", leave=False, disable=None)
