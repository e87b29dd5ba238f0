"""Run records on disk: one JSON file per (dataset, method, shots, seed), the runner's only output.

A record lives at ``<out>/<dataset>/<method>/k<shots>[_s<seed>].json`` and is written atomically.
Its ``status`` is "ok" or "failed"; a failed record says whether the dataset (``error_kind``
"dataset": missing files, a failed check) or the method ("method") failed. A file that cannot be
read back as such a record (truncated, empty, not JSON, no status) counts as missing: the next
``zsvl eval`` redoes it. Folders starting with "_" hold scratch files (few-shot manifests, LLM
caches) and are never records.
"""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zsvl._atomic import atomic_write_json
from zsvl.data.datasets import DatasetInfo

__all__ = [
    "RunSpec",
    "record_path",
    "read_record",
    "write_record",
    "iter_records",
    "unreadable_records",
    "examples_of",
    "confusion_of",
    "VALIDATION_RULES",
]

logger = logging.getLogger(__name__)

# protocol string of a method result -> how its hyperparameters were chosen (for the report)
VALIDATION_RULES = {
    "zero-shot": "none: no labelled image used",
    "fewshot-val": "grid search on min(K, 4) val images per class (CoOp few-shot val)",
    "cv": "cross-validation on the K shots (no val images)",
    "fixed": "fixed hyperparameters, no search",
    "reference-full-val": "REPRODUCTION MODE: search on the full val split",
    "reference-test": "REPRODUCTION MODE: search on the test split (leaky)",
    "vocabulary-free": "none: no class list, no labels",
    "retrieval (no labels)": "none: no labels",
    "base-to-new (no hyperparameters tuned)": "none: TEEN's published lam, tau",
    "alpha, beta on the labelled val split": "grid search on the whole labelled val split",
    "transductive (unlabelled test features)": "EM on unlabelled test features, no labels",
}


@dataclass(frozen=True)
class RunSpec:
    """One run of a suite: the unit a record describes (and the unit a scheduler distributes)."""

    dataset: DatasetInfo
    method: str
    shots: int
    seed: int | None  # None: a deterministic zero-shot method, run once
    params: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def label(self) -> str:
        seed = "" if self.seed is None else f" seed {self.seed}"
        return f"{self.dataset.name} {self.method} {self.shots}-shot{seed}"

    def path(self, out: str | Path) -> Path:
        return record_path(out, self.dataset.name, self.method, self.shots, self.seed)


def record_path(out: str | Path, dataset: str, method: str, shots: int, seed: int | None) -> Path:
    tail = f"k{shots}" + (f"_s{seed}" if seed is not None else "")
    return Path(out) / dataset / method / f"{tail}.json"


def read_record(path: str | Path) -> dict[str, Any] | None:
    """The record at ``path``, or None when it is missing or cannot be trusted (logged)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        logger.warning("Record %s is unreadable (%s); it will be redone.", path, exc)
        return None
    if not isinstance(record, dict) or record.get("status") not in ("ok", "failed"):
        logger.warning("Record %s has no valid status; it will be redone.", path)
        return None
    if record["status"] == "ok" and not isinstance(record.get("metrics"), dict):
        logger.warning("Record %s has no metrics; it will be redone.", path)
        return None
    return record


def write_record(path: str | Path, record: dict[str, Any]) -> Path:
    return atomic_write_json(Path(path), record, sort_keys=False, default=_jsonable)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _record_files(root: Path) -> list[Path]:
    return [p for p in sorted(root.glob("*/*/*.json")) if not p.parts[-3].startswith("_")]


def iter_records(out: str | Path) -> Iterator[dict[str, Any]]:
    """Every readable record under a results folder, ok and failed (each run's latest state)."""
    for path in _record_files(Path(out)):
        record = read_record(path)
        if record is not None:
            record.setdefault("method", path.parts[-2])
            record.setdefault("dataset", path.parts[-3])
            yield record


def unreadable_records(out: str | Path) -> list[Path]:
    """Record files that cannot be read (the next ``zsvl eval`` redoes them)."""
    paths = _record_files(Path(out))
    return [p for p in paths if read_record(p) is None]


def _thumbnail(path: str, size: int = 96) -> str | None:
    """A PNG thumbnail as base64 text (so a report needs no access to the data)."""
    from PIL import Image

    try:
        with Image.open(path) as opened:
            image = opened.convert("RGB")
        if max(image.size) < size:  # tiny images: scale up, pixelated in the page
            image = image.resize((size, size), Image.Resampling.NEAREST)
        image.thumbnail((size, size))
        buf = io.BytesIO()
        image.save(buf, format="PNG")
    except (OSError, ValueError):
        return None
    return base64.b64encode(buf.getvalue()).decode("ascii")


def relative_source(source: str, root: Path | None) -> str:
    """``source`` relative to the data root when it lies under it (never an absolute path)."""
    if root is not None:
        try:
            return Path(source).resolve().relative_to(Path(root).resolve()).as_posix()
        except ValueError:
            pass
    return Path(source).name


def examples_of(
    scores: np.ndarray,
    y: np.ndarray,
    sources: list[str],
    names: tuple[str, ...],
    root: Path | None,
    n: int = 4,
) -> list[dict[str, Any]]:
    """``n`` test images spread over the split: relative source, thumbnail, truth, top-3, right."""
    picks = (
        np.linspace(0, len(y) - 1, num=min(n, len(y)), dtype=int) if len(y) else np.zeros(0, int)
    )
    out = []
    for i in picks:
        top = np.argsort(-scores[i])[:3]
        out.append(
            {
                "source": relative_source(sources[i], root),
                "thumb": _thumbnail(sources[i]),
                "truth": names[y[i]],
                "top": [[names[c], float(scores[i, c])] for c in top],
                "correct": bool(top[0] == y[i]),
            }
        )
    return out


def confusion_of(scores: np.ndarray, y: np.ndarray, n_classes: int) -> dict[str, Any]:
    """Per-class top-1 (%) and the confusion matrix as sparse [true, predicted, count] triples."""
    pred = scores.argmax(1)
    counts = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(counts, (y, pred), 1)
    support = counts.sum(1)
    per_class = np.where(support > 0, 100.0 * np.diag(counts) / np.maximum(support, 1), np.nan)
    t, p = np.nonzero(counts)
    return {
        "per_class_top1": [None if np.isnan(v) else float(v) for v in per_class],
        "confusion": [[int(a), int(b), int(counts[a, b])] for a, b in zip(t, p, strict=True)],
    }
