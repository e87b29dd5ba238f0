"""Reports from a results folder: Markdown, CSV, or one self-contained HTML page (jinja2).

The HTML page: a run header (model, fingerprint, datasets and split sizes, protocol, versions,
run times), the main table with the best top-1 per column marked, changes against zero-shot,
few-shot curves, the other metrics, per-class accuracy and a confusion matrix for one method,
example cards and the failures; every image is inlined, so the file stands alone.
"""

from __future__ import annotations

import base64
import logging
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from zsvl.errors import InvalidParameterError
from zsvl.eval.aggregate import (
    Aggregate,
    aggregate,
    extra_keys,
    failure_label,
    fmt_cell,
    row_metric,
    to_csv,
    to_markdown,
)
from zsvl.eval.records import iter_records, unreadable_records

__all__ = ["render_report", "write_report", "find_results"]

logger = logging.getLogger(__name__)

FORMATS = ("md", "csv", "html")


def find_results(results: str | Path) -> Path:
    """The folder holding the records: ``results`` itself, or the one folder below it that holds
    records (``zsvl report results/`` after ``make demo`` finds ``results/toy``)."""
    root = Path(results)
    if not root.is_dir():
        raise InvalidParameterError(
            f"{results} is not a folder; give the --out folder of zsvl eval."
        )
    if next(iter_records(root), None) is not None or unreadable_records(root):
        return root
    found = sorted({p.parents[2] for p in root.glob("**/*/*/k*.json") if "_work" not in p.parts})
    found = [p for p in found if next(iter_records(p), None) is not None]
    if len(found) == 1:
        logger.info("Reading the records under %s", found[0])
        return found[0]
    if found:
        listing = ", ".join(str(p) for p in found[:5])
        raise InvalidParameterError(
            f"No run records directly under {results}, but {len(found)} results folders below "
            f"it: {listing}. Name one, e.g. `zsvl report {found[0]}`."
        )
    raise InvalidParameterError(
        f"No run records under {results}; run `zsvl eval ... --out {results}` first "
        f"(`make demo` writes results/toy)."
    )


def render_report(results: str | Path, fmt: str = "md", *, method: str | None = None) -> str:
    """The report of every record under ``results`` as text in ``fmt`` (md, csv or html).

    ``method``: the method whose per-class accuracy, confusion and examples the HTML page shows
    (default: zeroshot when present)."""
    if fmt not in FORMATS:
        raise InvalidParameterError(f"Report format must be one of {FORMATS}. Got {fmt!r}.")
    root = find_results(results)
    records = list(iter_records(root))
    broken = unreadable_records(root)
    if not records:
        raise InvalidParameterError(
            f"No readable run records under {root} ({len(broken)} unreadable); rerun "
            f"`zsvl eval ... --out {root}` to redo them."
        )
    agg = aggregate(records)
    note = ""
    if broken:
        note = (
            f"\n{len(broken)} record files are unreadable (first: {broken[0].relative_to(root)}); "
            f"the next `zsvl eval --out {root}` redoes them.\n"
        )
    if fmt == "md":
        return to_markdown(agg) + "\n" + note
    if fmt == "csv":
        return to_csv(agg)
    return _html(agg, root, method=method, broken=[str(p.relative_to(root)) for p in broken])


def write_report(
    results: str | Path, out: str | Path, fmt: str | None = None, *, method: str | None = None
) -> Path:
    out = Path(out)
    fmt = fmt or out.suffix.lstrip(".") or "md"
    text = render_report(results, fmt, method=method)
    from zsvl._atomic import atomic_write_text

    return atomic_write_text(out, text)


def _data_uri(png: bytes | None) -> str | None:
    return None if png is None else "data:image/png;base64," + base64.b64encode(png).decode()


def _header(agg: Aggregate, failures: list[dict[str, Any]]) -> dict[str, Any]:
    recs = agg.records + failures
    models = Counter((r.get("model", ""), r.get("encoder_fingerprint", "")) for r in agg.records)
    datasets: dict[str, dict[str, Any]] = {}
    for r in agg.records:
        d = datasets.setdefault(r["dataset"], {"name": r["dataset"], "classes": None, "splits": {}})
        if r.get("class_names"):
            d["classes"] = len(r["class_names"])
        d["splits"].update(r.get("split_sizes") or {"test": r.get("n_test")})
    rules: dict[str, set[str]] = defaultdict(set)
    for r in agg.records:
        rules[r["method"]].add(r.get("validation") or r.get("protocol") or "?")
    times = [r["started_at"] for r in recs if r.get("started_at")]
    per_method: dict[str, float] = defaultdict(float)
    for r in recs:
        per_method[r.get("method", "?")] += float(r.get("wall_time_s") or 0.0)
    return {
        "models": [
            {"spec": m or "(not recorded)", "fingerprint": f, "runs": n}
            for (m, f), n in models.items()
        ],
        "versions": sorted({str(r.get("zsvl_version", "?")) for r in recs}),
        "datasets": list(datasets.values()),
        "shots": sorted({int(r["shots"]) for r in recs if r.get("shots") is not None}),
        "seeds": sorted({int(r["seed"]) for r in recs if r.get("seed") is not None}),
        "rules": {m: sorted(v) for m, v in sorted(rules.items())},
        "n_runs": len(recs),
        "wall_s": sum(per_method.values()),
        "method_s": sorted(per_method.items(), key=lambda kv: -kv[1]),
        "first": min(times) if times else None,
        "last": max(times) if times else None,
    }


def _main_table(agg: Aggregate) -> list[dict[str, Any]]:
    rows = []
    base = agg.rows[0] if agg.rows and agg.rows[0] == "zeroshot" else None
    for row in agg.rows:
        cells = []
        for d in agg.datasets:
            cell = agg.cells.get((row, d))
            best = cell is not None and row_metric(row) == "top1" and cell[0] == agg.best(d)
            delta = (
                agg.delta(row, d) if base and row != base and row_metric(row) == "top1" else None
            )
            cells.append(
                {
                    "text": fmt_cell(cell),
                    "best": best,
                    "delta": None if delta is None or np.isnan(delta) else delta,
                }
            )
        mean = agg.row_mean(row)
        rows.append(
            {
                "name": row,
                "method": row.split(" (")[0].split(" [")[0],
                "metric": row_metric(row),
                "cells": cells,
                "mean": None if np.isnan(mean) else mean,
                "mean_best": row_metric(row) == "top1"
                and not np.isnan(mean)
                and mean == agg.best(None),
            }
        )
    return rows


def _detail(agg: Aggregate, method: str) -> list[dict[str, Any]]:
    """Per dataset: per-class accuracy, confusion and example cards of ``method`` (seeds pooled)."""
    from zsvl.eval.plots import confusion_png, per_class_png

    shots = {k for (m, k) in agg.row_of if m == method}
    out = []
    for ds in agg.datasets:
        recs = [
            r
            for r in agg.records
            if r["dataset"] == ds
            and r["method"] == method
            and int(r["shots"]) in shots
            and r.get("per_class_top1")
        ]
        if not recs:
            continue
        names = recs[0]["class_names"]
        per_class = np.nanmean(
            np.array([[np.nan if v is None else v for v in r["per_class_top1"]] for r in recs]),
            axis=0,
        )
        triples = [t for r in recs for t in r.get("confusion", [])]
        pairs: Counter = Counter()
        for t, p, n in triples:
            if t != p:
                pairs[(t, p)] += n
        label = f"{ds}: {method}" + (
            f" ({max(shots)}-shot, {len(recs)} seeds)" if max(shots) else ""
        )
        cards = _cards(recs)
        out.append(
            {
                "dataset": ds,
                "anchor": _anchor("detail", ds),
                "label": label,
                "per_class": _data_uri(per_class_png(names, list(per_class), label)),
                "confusion": _data_uri(confusion_png(names, triples, label))
                if len(names) <= 60
                else None,
                "top_confusions": [
                    {"truth": names[t], "predicted": names[p], "count": n}
                    for (t, p), n in pairs.most_common(8)
                ],
                "cards": cards,
            }
        )
    return out


def _cards(recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Example cards of one (dataset, method): image, truth, top-3, right or wrong, and the
    descriptors that decided (description methods explain the same test images)."""
    explained = {e.get("source"): e for r in recs for e in r.get("explanations", [])}
    cards = []
    for ex in recs[0].get("examples", []) if recs else []:
        src = str(ex.get("source", ""))
        why = explained.get(src) or {}
        cards.append(
            {
                **ex,
                "source": Path(src).name if Path(src).is_absolute() else src,
                "descriptors": why.get("descriptors", [])[:4],
            }
        )
    return cards


def _described(agg: Aggregate, skip: str) -> list[dict[str, Any]]:
    """Example cards of every method that explains its predictions (descriptor methods)."""
    groups = []
    for key in agg.explanations:
        ds, method = key.split(" / ", 1)
        if method == skip:
            continue
        recs = [r for r in agg.records if r["dataset"] == ds and r["method"] == method]
        recs = [r for r in recs if r.get("examples")]
        if recs:
            groups.append(
                {
                    "dataset": ds,
                    "method": method,
                    "cards": _cards(recs[:1]),
                    "anchor": _anchor("explain", ds, method),
                }
            )
    return groups


def _anchor(*parts: str) -> str:
    return "-".join("".join(c if c.isalnum() else "-" for c in p.lower()) for p in parts)


def _html(agg: Aggregate, root: Path, *, method: str | None, broken: list[str]) -> str:
    import jinja2

    from zsvl.eval.plots import curve_png, method_colours

    methods = [r["method"] for r in agg.records]
    if method is None:
        method = "zeroshot" if "zeroshot" in methods else (methods[0] if methods else "")
    elif method not in methods:
        import difflib

        close = difflib.get_close_matches(method, sorted(set(methods)), n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise InvalidParameterError(
            f"No ok record of method {method!r} under {root}.{hint} "
            f"Methods with records: {', '.join(sorted(set(methods)))}."
        )
    # few-shot methods (the ones drawn as curves) get the strong tab10 colours first
    colours = method_colours(sorted(agg.rows, key=lambda r: "-shot)" not in r))
    curves = [{"dataset": ds, "uri": _data_uri(curve_png(agg, ds, colours))} for ds in agg.datasets]
    keys = extra_keys(agg)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template("report.html.j2").render(
        title=f"zsvl report: {root.name}",
        header=_header(agg, agg.failures),
        datasets=agg.datasets,
        rows=_main_table(agg),
        has_baseline=bool(agg.rows) and agg.rows[0] == "zeroshot",
        curves=[c for c in curves if c["uri"]],
        extra=[
            {
                "row": r,
                "metric": n,
                "cells": [fmt_cell(agg.extra.get((r, n, d))) for d in agg.datasets],
            }
            for r, n in keys
        ],
        method=method,
        details=_detail(agg, method),
        described=_described(agg, method),
        failures=[
            {
                "label": failure_label(f),
                "kind": f.get("error_kind", "method"),
                "error": f.get("error", ""),
            }
            for f in agg.failures
        ],
        broken=broken,
    )
