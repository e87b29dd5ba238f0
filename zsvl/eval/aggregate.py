"""Aggregate run records into the paper-style table, few-shot curves and deltas (data only)."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Aggregate", "aggregate", "to_markdown", "to_csv", "row_metric"]

_PLAIN = ("top1", "top5", "mean_per_class")  # shown in the main table or implied by it


@dataclass
class Aggregate:
    """Means and standard deviations over seeds of each method's primary metric (%).

    cells[(row, dataset)] = (mean, std, n_seeds); a row is a method at its largest shot count
    ("tip (16-shot)") or a zero-shot method; methods whose primary metric is not top-1 carry it
    in brackets ("vocab-free [cluster_accuracy]"). curves[dataset][method][shots] = (mean, std).
    extra[(row, metric, dataset)] = (mean, std, n): the other metrics of the same runs.
    """

    datasets: list[str]
    rows: list[str]
    cells: dict[tuple[str, str], tuple[float, float, int]]
    curves: dict[str, dict[str, dict[int, tuple[float, float]]]]
    failures: list[dict[str, Any]] = field(default_factory=list)
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    explanations: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    extra: dict[tuple[str, str, str], tuple[float, float, int]] = field(default_factory=dict)
    records: list[dict[str, Any]] = field(default_factory=list)  # the ok records
    row_of: dict[tuple[str, int], str] = field(default_factory=dict)  # (method, shots) -> row

    def row_mean(self, row: str) -> float:
        vals = [self.cells[(row, d)][0] for d in self.datasets if (row, d) in self.cells]
        return float(np.mean(vals)) if len(vals) == len(self.datasets) else float("nan")

    def delta(self, row: str, dataset: str, baseline: str = "zeroshot") -> float:
        if (row, dataset) not in self.cells or (baseline, dataset) not in self.cells:
            return float("nan")
        return self.cells[(row, dataset)][0] - self.cells[(baseline, dataset)][0]

    def best(self, dataset: str | None) -> float:
        """The highest top-1 mean of a column (``None``: the mean column) among top-1 rows."""
        vals = [
            self.row_mean(r) if dataset is None else self.cells.get((r, dataset), (np.nan,))[0]
            for r in self.rows
            if row_metric(r) == "top1"
        ]
        vals = [v for v in vals if not np.isnan(v)]
        return max(vals) if vals else float("nan")


def row_metric(row: str) -> str:
    """The metric a row of the table shows ("top1" unless named in brackets)."""
    return row.rsplit("[", 1)[1].rstrip("]") if row.endswith("]") else "top1"


def _label(method: str, primary: str) -> str:
    return method if primary == "top1" else f"{method} [{primary}]"


def aggregate(records: Iterable[dict[str, Any]]) -> Aggregate:
    values: dict[tuple[str, str, int], list[float]] = defaultdict(list)
    others: dict[tuple[str, str, int, str], list[float]] = defaultdict(list)
    failures: list[dict[str, Any]] = []
    ok: list[dict[str, Any]] = []
    examples: dict[str, list[dict[str, Any]]] = {}
    explanations: dict[str, list[dict[str, Any]]] = {}
    datasets: list[str] = []
    for rec in records:
        ds = rec.get("dataset", "?")
        if ds not in datasets:
            datasets.append(ds)
        if rec.get("status") != "ok":
            failures.append(rec)
            continue
        ok.append(rec)
        primary = rec.get("primary_metric", "top1")
        method = _label(rec["method"], primary)
        shots = int(rec["shots"])
        value = rec["metrics"].get(primary)
        if value is None:
            continue
        values[(method, ds, shots)].append(float(value))
        for name, v in rec["metrics"].items():
            if name != primary and name not in _PLAIN and isinstance(v, (int, float)):
                others[(method, ds, shots, name)].append(float(v))
        if rec.get("examples") and (rec["method"] == "zeroshot" or ds not in examples):
            examples[ds] = rec["examples"]
        if rec.get("explanations"):
            explanations.setdefault(f"{ds} / {rec['method']}", rec["explanations"])
    datasets = [d for d in datasets if any(ds == d for _, ds, _ in values)] or datasets
    curves: dict[str, dict[str, dict[int, tuple[float, float]]]] = defaultdict(
        lambda: defaultdict(dict)
    )
    for (method, ds, shots), vals in values.items():
        curves[ds][method][shots] = (float(np.mean(vals)), float(np.std(vals)))
    cells: dict[tuple[str, str], tuple[float, float, int]] = {}
    extra: dict[tuple[str, str, str], tuple[float, float, int]] = {}
    rows: list[str] = []
    row_of: dict[tuple[str, int], str] = {}
    shot_based = {m for m, _, k in values if k > 0}
    methods = sorted(  # zeroshot, other top-1 zero-shot methods, few-shot ones, other metrics
        dict.fromkeys(m for m, _, _ in values),
        key=lambda m: (m != "zeroshot", row_metric(m) != "top1", m in shot_based),
    )
    for method in methods:
        shot_counts = sorted({k for m, _, k in values if m == method})
        chosen = 0 if 0 in shot_counts else max(shot_counts)
        row = method if chosen == 0 else f"{method} ({chosen}-shot)"
        if row_metric(method) != "top1" and chosen:
            base, metric = method.rsplit(" [", 1)
            row = f"{base} ({chosen}-shot) [{metric}"
        rows.append(row)
        row_of[(method.split(" [")[0], chosen)] = row
        for ds in datasets:
            cell = values.get((method, ds, chosen))
            if cell:
                cells[(row, ds)] = (float(np.mean(cell)), float(np.std(cell)), len(cell))
        for (m, ds, k, name), vals in others.items():
            if m == method and k == chosen:
                extra[(row, name, ds)] = (float(np.mean(vals)), float(np.std(vals)), len(vals))
    return Aggregate(
        datasets,
        rows,
        cells,
        {k: dict(v) for k, v in curves.items()},
        failures,
        examples,
        explanations,
        extra,
        ok,
        row_of,
    )


def fmt_cell(cell: tuple[float, float, int] | None) -> str:
    if cell is None:
        return "–"
    mean, std, n = cell
    return f"{mean:.1f} ± {std:.1f}" if n > 1 else f"{mean:.1f}"


def _is_best(agg: Aggregate, row: str, dataset: str | None, value: float) -> bool:
    return row_metric(row) == "top1" and not np.isnan(value) and value == agg.best(dataset)


def to_markdown(agg: Aggregate) -> str:
    """Datasets as columns, methods as rows, a mean column (best top-1 per column in bold);
    then deltas against zero-shot, few-shot curves, the other metrics and the failures."""
    head = "| method | " + " | ".join(agg.datasets) + " | mean |"
    lines = [head, "|---|" + "---:|" * (len(agg.datasets) + 1)]
    for row in agg.rows:
        cells = []
        for d in agg.datasets:
            text = fmt_cell(agg.cells.get((row, d)))
            best = (row, d) in agg.cells and _is_best(agg, row, d, agg.cells[(row, d)][0])
            cells.append(f"**{text}**" if best else text)
        mean = agg.row_mean(row)
        mean_text = "–" if np.isnan(mean) else f"{mean:.1f}"
        if _is_best(agg, row, None, mean):
            mean_text = f"**{mean_text}**"
        lines.append(f"| {row} | {' | '.join(cells)} | {mean_text} |")
    lines += ["", "Bold: best top-1 of the column. Rows with [metric] show that metric instead."]
    if any(r.startswith("zeroshot") for r in agg.rows) and len(agg.rows) > 1:
        lines += [
            "",
            "Change against zero-shot (top-1 points):",
            "",
            head.replace(" mean |", ""),
            "|---|" + "---:|" * len(agg.datasets),
        ]
        for row in agg.rows:
            if row == "zeroshot" or row_metric(row) != "top1":
                continue
            deltas = [agg.delta(row, d) for d in agg.datasets]
            lines.append(
                f"| {row} | "
                + " | ".join("–" if np.isnan(x) else f"{x:+.1f}" for x in deltas)
                + " |"
            )
    lines += _curve_tables(agg) + _extra_table(agg)
    if agg.failures:
        lines += ["", f"{len(agg.failures)} runs failed:"]
        lines += [f"- {failure_label(f)}: {f.get('error')}" for f in agg.failures[:20]]
    return "\n".join(lines)


def failure_label(record: dict[str, Any]) -> str:
    seed = "" if record.get("seed") is None else f" seed {record['seed']}"
    return f"{record.get('dataset')} / {record.get('method')} k={record.get('shots')}{seed}"


def _curve_tables(agg: Aggregate) -> list[str]:
    """Per dataset: each few-shot method (and zero-shot) as a row, shot counts as columns."""
    out: list[str] = []
    for ds in agg.datasets:
        methods = agg.curves.get(ds, {})
        shot_methods = [m for m, pts in methods.items() if any(k > 0 for k in pts)]
        if not shot_methods:
            continue
        ks = sorted({k for m in shot_methods for k in methods[m] if k > 0})
        out += ["", f"Few-shot curve, {ds} (mean ± std over seeds):", ""]
        out.append("| method | " + " | ".join(f"{k}-shot" for k in ks) + " |")
        out.append("|---|" + "---:|" * len(ks))
        if "zeroshot" in methods and 0 in methods["zeroshot"]:
            z = methods["zeroshot"][0][0]
            out.append("| zeroshot | " + " | ".join(f"{z:.1f}" for _ in ks) + " |")
        for m in shot_methods:
            pts = methods[m]
            out.append(
                f"| {m} | "
                + " | ".join(f"{pts[k][0]:.1f} ± {pts[k][1]:.1f}" if k in pts else "–" for k in ks)
                + " |"
            )
    return out


def _natural(text: str) -> list[Any]:
    """Sort key that puts R@5 before R@10."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def extra_keys(agg: Aggregate) -> list[tuple[str, str]]:
    """(row, metric) pairs of the other-metrics table, in table row order, metrics naturally."""
    found = {(row, name) for row, name, _ in agg.extra}
    return sorted(found, key=lambda k: (agg.rows.index(k[0]), _natural(k[1])))


def _extra_table(agg: Aggregate) -> list[str]:
    keys = extra_keys(agg)
    if not keys:
        return []
    out = ["", "Other metrics of the same runs:", ""]
    out.append("| method | metric | " + " | ".join(agg.datasets) + " |")
    out.append("|---|---|" + "---:|" * len(agg.datasets))
    for row, name in keys:
        cells = " | ".join(fmt_cell(agg.extra.get((row, name, d))) for d in agg.datasets)
        out.append(f"| {row} | {name} | {cells} |")
    return out


def to_csv(agg: Aggregate) -> str:
    lines = ["method,dataset,shots,top1_mean,top1_std"]
    for ds, methods in agg.curves.items():
        for method, points in methods.items():
            for shots, (mean, std) in sorted(points.items()):
                lines.append(f"{method},{ds},{shots},{mean:.4f},{std:.4f}")
    return "\n".join(lines) + "\n"
