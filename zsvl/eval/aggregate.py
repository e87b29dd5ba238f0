"""Aggregate run records into the paper-style table, few-shot curves and deltas (data only)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Aggregate", "aggregate", "to_markdown", "to_csv"]


@dataclass
class Aggregate:
    """Means and standard deviations over seeds of the primary metric (top-1, %).

    cells[(row, dataset)] = (mean, std, n_seeds); a row is a method at its largest shot count
    ("tip (16-shot)") or a zero-shot method. curves[dataset][method][shots] = (mean, std).
    """

    datasets: list[str]
    rows: list[str]
    cells: dict[tuple[str, str], tuple[float, float, int]]
    curves: dict[str, dict[str, dict[int, tuple[float, float]]]]
    failures: list[dict[str, Any]] = field(default_factory=list)
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    explanations: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def row_mean(self, row: str) -> float:
        vals = [self.cells[(row, d)][0] for d in self.datasets if (row, d) in self.cells]
        return float(np.mean(vals)) if len(vals) == len(self.datasets) else float("nan")

    def delta(self, row: str, dataset: str, baseline: str = "zeroshot") -> float:
        if (row, dataset) not in self.cells or (baseline, dataset) not in self.cells:
            return float("nan")
        return self.cells[(row, dataset)][0] - self.cells[(baseline, dataset)][0]


def _row_name(method: str, shots: int, max_shots: int) -> str:
    return method if shots == 0 else f"{method} ({max_shots}-shot)"


def aggregate(records: Iterable[dict[str, Any]]) -> Aggregate:
    values: dict[tuple[str, str, int], list[float]] = defaultdict(list)
    failures, examples, explanations = [], {}, {}
    datasets: list[str] = []
    for rec in records:
        if rec.get("status") != "ok":
            failures.append(rec)
            continue
        ds = rec["dataset"]
        if ds not in datasets:
            datasets.append(ds)
        primary = rec.get("primary_metric", "top1")
        method = rec["method"] if primary == "top1" else f"{rec['method']} [{primary}]"
        value = rec["metrics"].get(primary)
        if value is None:
            continue
        values[(method, ds, int(rec["shots"]))].append(float(value))
        if rec.get("examples") and (rec["method"] == "zeroshot" or ds not in examples):
            examples[ds] = rec["examples"]
        if rec.get("explanations"):
            explanations.setdefault(f"{ds} / {rec['method']}", rec["explanations"])
    curves: dict[str, dict[str, dict[int, tuple[float, float]]]] = defaultdict(
        lambda: defaultdict(dict)
    )
    for (method, ds, shots), vals in values.items():
        curves[ds][method][shots] = (float(np.mean(vals)), float(np.std(vals)))
    cells: dict[tuple[str, str], tuple[float, float, int]] = {}
    rows: list[str] = []
    methods = sorted(dict.fromkeys(m for m, _, _ in values), key=lambda m: m != "zeroshot")
    for method in methods:
        shot_counts = sorted({k for m, _, k in values if m == method})
        chosen = 0 if 0 in shot_counts else max(shot_counts)
        row = _row_name(method, chosen, chosen)
        rows.append(row)
        for ds in datasets:
            vals = values.get((method, ds, chosen))
            if vals:
                cells[(row, ds)] = (float(np.mean(vals)), float(np.std(vals)), len(vals))
    return Aggregate(
        datasets,
        rows,
        cells,
        {k: dict(v) for k, v in curves.items()},
        failures,
        examples,
        explanations,
    )


def _cell(agg: Aggregate, row: str, ds: str) -> str:
    if (row, ds) not in agg.cells:
        return "–"
    mean, std, n = agg.cells[(row, ds)]
    return f"{mean:.1f} ± {std:.1f}" if n > 1 else f"{mean:.1f}"


def to_markdown(agg: Aggregate) -> str:
    """Datasets as columns, methods as rows, a mean column; then deltas against zero-shot."""
    head = "| method | " + " | ".join(agg.datasets) + " | mean |"
    lines = [head, "|---|" + "---:|" * (len(agg.datasets) + 1)]
    for row in agg.rows:
        cells = " | ".join(_cell(agg, row, d) for d in agg.datasets)
        mean = agg.row_mean(row)
        lines.append(f"| {row} | {cells} | {'–' if np.isnan(mean) else f'{mean:.1f}'} |")
    if any(r.startswith("zeroshot") for r in agg.rows) and len(agg.rows) > 1:
        lines += [
            "",
            "Change against zero-shot (top-1 points):",
            "",
            head.replace("| mean |", "|"),
            "|---|" + "---:|" * len(agg.datasets),
        ]
        for row in agg.rows:
            if row == "zeroshot" or "[" in row:  # another metric: no top-1 difference
                continue
            deltas = [agg.delta(row, d) for d in agg.datasets]
            lines.append(
                f"| {row} | "
                + " | ".join("–" if np.isnan(x) else f"{x:+.1f}" for x in deltas)
                + " |"
            )
    if agg.failures:
        lines += ["", f"{len(agg.failures)} runs failed:"]
        lines += [
            f"- {f.get('dataset')} / {f.get('method')} k={f.get('shots')}: {f.get('error')}"
            for f in agg.failures[:20]
        ]
    return "\n".join(lines)


def to_csv(agg: Aggregate) -> str:
    lines = ["method,dataset,shots,top1_mean,top1_std"]
    for ds, methods in agg.curves.items():
        for method, points in methods.items():
            for shots, (mean, std) in sorted(points.items()):
                lines.append(f"{method},{ds},{shots},{mean:.4f},{std:.4f}")
    return "\n".join(lines) + "\n"
