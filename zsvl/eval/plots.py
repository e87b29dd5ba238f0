"""The report's figures as PNG bytes: few-shot curves, per-class accuracy, a confusion matrix.

Every method keeps one colour in every figure (``method_colours``); each metric gets its own axis
(top-1 and, say, base-to-new "top1_new" are never drawn on one scale); legends sit outside the
plotting area.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np

from zsvl.eval.aggregate import Aggregate, row_metric

__all__ = ["method_colours", "curve_png", "per_class_png", "confusion_png"]

_METRIC_LABEL = {"top1": "top-1 accuracy (%)", "top1_new": "top-1 on new classes (%)"}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def method_colours(methods: Sequence[str]) -> dict[str, Any]:
    """A distinct colour per method name (tab10, then the rest of tab20), zeroshot in black."""
    plt = _pyplot()
    palette = list(plt.get_cmap("tab10").colors)
    tab20 = plt.get_cmap("tab20").colors
    palette += [tab20[i] for i in range(1, 20, 2)]  # the light halves: distinct from tab10
    bases = (m.split(" [")[0].split(" (")[0] for m in methods)  # "tip (16-shot)" -> "tip"
    names = [m for m in dict.fromkeys(bases) if m != "zeroshot"]
    colours: dict[str, Any] = {"zeroshot": (0.0, 0.0, 0.0)}
    for i, name in enumerate(names):
        colours[name] = palette[i % len(palette)]
    return colours


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    _pyplot().close(fig)
    return buf.getvalue()


def curve_png(agg: Aggregate, dataset: str, colours: dict[str, Any]) -> bytes | None:
    """Metric vs labelled images per class for each few-shot method on ``dataset`` (one axis per
    metric; zero-shot as a dashed line on the top-1 axis). None when no method uses shots."""
    methods = agg.curves.get(dataset, {})
    shot_methods = [m for m, pts in methods.items() if any(k > 0 for k in pts)]
    if not shot_methods:
        return None
    metrics = sorted(dict.fromkeys(row_metric(m) for m in shot_methods), key=lambda m: m != "top1")
    plt = _pyplot()
    fig, axes = plt.subplots(
        1, len(metrics), figsize=(4.2 * len(metrics), 3.2), dpi=100, squeeze=False
    )
    max_shots = max(k for m in shot_methods for k in methods[m])
    handles: dict[str, Any] = {}
    for ax, metric in zip(axes[0], metrics, strict=True):
        if metric == "top1" and 0 in methods.get("zeroshot", {}):
            handles["zeroshot"] = ax.axhline(
                methods["zeroshot"][0][0], linestyle="--", linewidth=1.2, color="black"
            )
        drawn = [m for m in shot_methods if row_metric(m) == metric]
        for i, method in enumerate(drawn):
            name = method.split(" [")[0]
            shots = sorted(k for k in methods[method] if k > 0)
            dodge = 1.0 + 0.04 * (i - (len(drawn) - 1) / 2)  # error bars side by side
            mean = np.array([methods[method][k][0] for k in shots])
            std = np.array([methods[method][k][1] for k in shots])
            line = ax.errorbar(
                [k * dodge for k in shots],
                mean,
                yerr=std,
                marker="o",
                markersize=4,
                capsize=3,
                color=colours.get(name),
                label=name,
            )
            handles[name] = line
        ax.set_xscale("log", base=2)
        ax.set_xticks([k for k in (1, 2, 4, 8, 16, 32, 64) if k <= max_shots])
        ax.get_xaxis().set_major_formatter(plt.matplotlib.ticker.ScalarFormatter())
        ax.set_xlabel("labelled images per class")
        ax.set_ylabel(_METRIC_LABEL.get(metric, metric))
        ax.grid(alpha=0.3)
    fig.suptitle(dataset, fontsize=11)
    fig.legend(
        list(handles.values()),
        list(handles),
        loc="center left",
        bbox_to_anchor=(1.0, 0.5),
        fontsize=8,
        frameon=False,
    )
    fig.tight_layout()
    return _png(fig)


def per_class_png(names: Sequence[str], accuracy: Sequence[float | None], title: str) -> bytes:
    """Horizontal bars of per-class top-1 (%), worst class at the top."""
    acc = np.array([np.nan if a is None else a for a in accuracy], dtype=float)
    order = np.argsort(np.nan_to_num(acc, nan=-1.0))
    plt = _pyplot()
    height = max(2.0, 0.17 * len(names) + 0.8)
    fig, ax = plt.subplots(figsize=(4.6, height), dpi=100)
    ax.barh(np.arange(len(order)), acc[order], color="#4C72B0")
    ax.set_yticks(np.arange(len(order)), [names[i] for i in order], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("top-1 accuracy (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def confusion_png(names: Sequence[str], triples: Sequence[Sequence[int]], title: str) -> bytes:
    """Row-normalised confusion matrix (true class per row), from [true, predicted, count]."""
    C = len(names)
    counts = np.zeros((C, C))
    for t, p, n in triples:
        counts[t, p] += n
    rows = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    plt = _pyplot()
    side = max(3.2, 0.16 * C + 1.6)
    fig, ax = plt.subplots(figsize=(side + 0.8, side), dpi=100)
    image = ax.imshow(rows * 100, cmap="Blues", vmin=0, vmax=100)
    ticks = np.arange(C)
    size = 7 if C <= 30 else 5
    ax.set_xticks(ticks, names, rotation=90, fontsize=size)
    ax.set_yticks(ticks, names, fontsize=size)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="% of the true class")
    fig.tight_layout()
    return _png(fig)
