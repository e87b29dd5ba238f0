"""The suite runner: a list of runs, one run executed at a time, one JSON record each.

``plan_runs`` lists every (dataset, method, shots, seed) of a suite; ``pending_runs`` keeps those
without a trustworthy record (missing, unreadable, a failed dataset check; failed methods only
with ``retry_failed``); ``execute_run`` runs one of them against a ``DatasetSession`` (the
dataset's splits and test features, encoded once per model and dataset and cached on disk) and
writes its record. ``run_suite`` strings the three together with progress on stderr. A failing
dataset or method is recorded with its error and the rest goes on.
"""

from __future__ import annotations

import logging
import time
import traceback
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from zsvl._progress import progress_bar, progress_line
from zsvl._version import __version__
from zsvl.data.check import check_dataset
from zsvl.data.datasets import DatasetInfo, load_dataset
from zsvl.data.splits import Split
from zsvl.eval.catalog import get_method
from zsvl.eval.features import SplitFeatures, split_features
from zsvl.eval.metrics import mean_per_class_accuracy, topk_accuracy
from zsvl.eval.records import (
    VALIDATION_RULES,
    RunSpec,
    confusion_of,
    examples_of,
    iter_records,
    read_record,
    record_path,
    relative_source,
    write_record,
)
from zsvl.eval.registry import MethodContext, MethodResult
from zsvl.eval.suite import Suite
from zsvl.models.base import Encoder
from zsvl.text.templates import load_templates

__all__ = [
    "run_suite",
    "plan_runs",
    "pending_runs",
    "DatasetSession",
    "open_dataset",
    "execute_run",
    "record_path",
    "iter_records",
    "RunSpec",
]

logger = logging.getLogger(__name__)


class DatasetCheckError(ValueError):
    """A dataset failed its check; every run on it is recorded as failed (error_kind dataset)."""


def plan_runs(suite: Suite) -> list[RunSpec]:
    """Every run of ``suite``: shot-based methods at each K > 0 and seed, zero-shot ones at 0."""
    entries = [get_method(name) for name in suite.methods]  # unknown names fail before any work
    runs = []
    for info in suite.datasets:
        for entry in entries:
            params = dict(suite.params.get(entry.name, {}))
            pairs: list[tuple[int, int | None]]
            if entry.uses_shots:
                pairs = [(k, s) for k in suite.shots if k > 0 for s in suite.seeds]
            elif 0 not in suite.shots:
                pairs = []
            else:
                pairs = [(0, s) for s in suite.seeds] if entry.seeded else [(0, None)]
            runs += [RunSpec(info, entry.name, k, s, params) for k, s in pairs]
    return runs


def pending_runs(runs: list[RunSpec], out: str | Path, *, retry_failed: bool = False) -> list:
    """The runs that need doing: no readable record, a failed dataset check (the data may have
    been fixed), or, with ``retry_failed``, a failed method."""
    todo = []
    for spec in runs:
        record = read_record(spec.path(out))
        if record is None or record["status"] == "ok":
            if record is None:
                todo.append(spec)
            continue
        if record.get("error_kind") == "dataset" or retry_failed:
            todo.append(spec)
    return todo


@dataclass
class DatasetSession:
    """A dataset's splits and test features for one encoder, shared by every run on it."""

    info: DatasetInfo
    data_root: Path
    encoder: Encoder
    splits: dict[str, Split]
    test: SplitFeatures
    _whole: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def features(self, split: Split) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings and labels of a split: whole splits cached on disk, subsets per image."""
        if split is self.splits.get(split.name):
            if split.name not in self._whole:
                f = split_features(self.encoder, self.info.name, split)
                self._whole[split.name] = (f.X, f.y)
            return self._whole[split.name]
        enc = self.encoder.encode_images(split.paths, on_error="skip")
        return enc.embeddings, np.asarray(split.labels, dtype=np.int64)[enc.indices]

    @property
    def split_sizes(self) -> dict[str, int]:
        return {name: len(split) for name, split in self.splits.items()}


def open_dataset(info: DatasetInfo, data_root: str | Path, encoder: Encoder) -> DatasetSession:
    """Check the dataset (files present, classes, sizes), read its splits, encode its test split.
    Raises DatasetCheckError when the check fails."""
    report = check_dataset(info, data_root, decode=False)
    if not report.ok:
        raise DatasetCheckError(report.summary())
    splits = load_dataset(info, data_root)
    test = split_features(encoder, info.name, splits["test"])
    if len(test) == 0:
        raise DatasetCheckError(f"{info.name}: no readable test image.")
    return DatasetSession(info, Path(data_root), encoder, splits, test)


def _base_record(spec: RunSpec, model_spec: str, encoder: Encoder) -> dict[str, Any]:
    return {
        "dataset": spec.dataset.name,
        "method": spec.method,
        "shots": spec.shots,
        "seed": spec.seed,
        "model": model_spec,
        "encoder_fingerprint": encoder.fingerprint,
        "zsvl_version": __version__,
        "params": spec.params,
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def failed_record(
    spec: RunSpec, model_spec: str, encoder: Encoder | None, exc: BaseException, kind: str
) -> dict[str, Any]:
    base = _base_record(spec, model_spec, encoder) if encoder is not None else {}
    base.update(dataset=spec.dataset.name, method=spec.method, shots=spec.shots, seed=spec.seed)
    return {
        **base,
        "status": "failed",
        "error_kind": kind,
        "error": str(exc) if kind == "dataset" else f"{type(exc).__name__}: {exc}",
        "wall_time_s": 0.0,
    }


def execute_run(
    spec: RunSpec,
    session: DatasetSession,
    *,
    out: str | Path,
    model_spec: str = "",
    workdir: str | Path | None = None,
) -> dict[str, Any]:
    """Run one (dataset, method, shots, seed) and write its record; returns the record."""
    entry = get_method(spec.method)
    info, enc, test = session.info, session.encoder, session.test
    ctx = MethodContext(
        encoder=enc,
        dataset=info,
        classes=session.splits["test"].classes,
        templates=load_templates(info.templates),
        X_test=test.X,
        test_sources=test.paths,
        train=session.splits["train"],
        val=session.splits["val"],
        features=session.features,
        shots=spec.shots,
        seed=spec.seed if spec.seed is not None else 0,
        params=dict(spec.params),
        workdir=Path(workdir) if workdir else Path(out) / "_work",
        data_root=session.data_root,
    )
    record = _base_record(spec, model_spec, enc)
    record.update(split_sizes=session.split_sizes, n_test=len(test))
    record["n_skipped_images"] = len(test.failures)
    start = time.perf_counter()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = entry.run(ctx)
            record.update(_score(result, ctx, test, session.data_root))
    except Exception as exc:  # noqa: BLE001 - recorded, the suite goes on
        logger.info("%s failed: %s", spec.label, exc)
        record.update(
            status="failed",
            error_kind="method",
            error=f"{type(exc).__name__}: {exc}",
            traceback=traceback.format_exc(limit=5),
        )
    record["warnings"] = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
    for text in record["warnings"]:
        logger.info("%s: %s", spec.label, text)
    record["wall_time_s"] = time.perf_counter() - start
    write_record(spec.path(out), record)
    return record


def _score(result: MethodResult, ctx: MethodContext, test: SplitFeatures, root: Path) -> dict:
    """The metrics (and examples, per-class accuracy) of one method result, as record fields."""
    names = tuple(ctx.classes.names)
    protocol = result.protocol
    fields: dict[str, Any] = {
        "status": "ok",
        "hyperparameters": result.hyperparameters,
        "protocol": protocol,
        "validation": VALIDATION_RULES.get(protocol, protocol),
        "explanations": [
            {**e, "source": relative_source(str(e.get("source", "")), root)}
            for e in result.explanations[:8]
        ],
    }
    if result.predicted_names is not None:
        from zsvl.eval.vic_metrics import vic_metrics

        similarity = ctx.params.get("semantic_similarity")  # None: when the extra is installed
        found = vic_metrics(result.predicted_names, test.y, list(names), similarity=similarity)
        metrics = {k: v for k, v in found.items() if isinstance(v, (int, float)) or v is None}
        return {
            **fields,
            "primary_metric": result.primary_metric or "cluster_accuracy",
            "metrics": metrics,
        }
    if result.scores is None:
        if result.primary_metric not in result.metrics:
            raise ValueError("a method without scores or names must name its primary metric")
        return {**fields, "primary_metric": result.primary_metric, "metrics": result.metrics}
    scores = np.asarray(result.scores)
    expected = (len(test.y), len(names))
    if scores.shape != expected:
        raise ValueError(f"scores of shape {scores.shape}, expected {expected}")
    metrics = {
        "top1": topk_accuracy(scores, test.y, 1),
        "top5": topk_accuracy(scores, test.y, min(5, len(names))),
        "mean_per_class": mean_per_class_accuracy(scores, test.y),
        **result.metrics,
    }
    for name, (extra, k) in result.extra_scores.items():
        metrics[name] = topk_accuracy(np.asarray(extra), test.y, k)
    for name, classes in result.class_subsets.items():
        keep = np.isin(test.y, classes)
        metrics[f"top1_{name}"] = topk_accuracy(scores[keep], test.y[keep], 1)
    primary = result.primary_metric or "top1"
    if primary not in metrics:
        raise ValueError(f"primary metric {primary!r} is not among {sorted(metrics)}")
    return {
        **fields,
        "primary_metric": primary,
        "metrics": metrics,
        "class_names": list(names),
        **confusion_of(scores, test.y, len(names)),
        "examples": examples_of(scores, test.y, test.paths, names, root),
    }


@contextmanager
def third_party_quiet() -> Iterator[None]:
    """Hugging Face / transformers progress bars off while runs execute (restored after)."""
    import sys

    restore = []
    try:
        from huggingface_hub.utils import (
            are_progress_bars_disabled,
            disable_progress_bars,
            enable_progress_bars,
        )

        if not are_progress_bars_disabled():
            disable_progress_bars()
            restore.append(enable_progress_bars)
    except ImportError:  # pragma: no cover - huggingface_hub comes with open_clip
        pass
    tf_logging = getattr(
        sys.modules.get("transformers.utils.logging"), "is_progress_bar_enabled", None
    )
    if tf_logging is not None and tf_logging():
        tf = sys.modules["transformers.utils.logging"]
        tf.disable_progress_bar()
        restore.append(tf.enable_progress_bar)
    try:
        yield
    finally:
        for fn in restore:
            fn()


def _summary(record: dict[str, Any]) -> str:
    if record["status"] != "ok":
        return f"FAILED ({record['error']})"
    primary = record["primary_metric"]
    value = record["metrics"].get(primary)
    shown = "n/a" if value is None else f"{value:.1f}"
    return f"{primary} {shown} in {record['wall_time_s']:.1f} s"


def run_suite(
    suite: Suite,
    *,
    data_root: str | Path,
    encoder: Encoder,
    out: str | Path,
    model_spec: str = "",
    workdir: str | Path | None = None,
    retry_failed: bool = False,
) -> list[dict[str, Any]]:
    """Run the pending runs of ``suite``; returns the records written in this call."""
    out = Path(out)
    todo = pending_runs(plan_runs(suite), out, retry_failed=retry_failed)
    written: list[dict[str, Any]] = []
    with third_party_quiet(), progress_bar(total=len(todo), desc="eval", unit="run") as bar:
        for info in suite.datasets:
            mine = [spec for spec in todo if spec.dataset is info]
            if not mine:
                continue
            bar.set_postfix_str(f"{info.name}: checking and encoding", refresh=True)
            try:
                session = open_dataset(info, data_root, encoder)
            except Exception as exc:  # noqa: BLE001 - every run on it is recorded as failed
                logger.error("Dataset %s failed: %s", info.name, exc)
                for spec in mine:
                    record = failed_record(spec, model_spec, encoder, exc, "dataset")
                    write_record(spec.path(out), record)
                    written.append(record)
                    bar.update(1)
                progress_line(f"{info.name}: dataset FAILED, {len(mine)} runs not done ({exc})")
                continue
            for spec in mine:
                bar.set_postfix_str(spec.label, refresh=True)
                record = execute_run(spec, session, out=out, model_spec=model_spec, workdir=workdir)
                written.append(record)
                bar.update(1)
                progress_line(f"[{len(written)}/{len(todo)}] {spec.label}: {_summary(record)}")
    return written
