"""Reports from a results folder: Markdown, CSV, or one self-contained HTML file with plots."""

from __future__ import annotations

import base64
import html
import io
import logging
from pathlib import Path
from typing import Any

import numpy as np

from zsvl.errors import InvalidParameterError
from zsvl.eval.aggregate import Aggregate, aggregate, to_csv, to_markdown
from zsvl.eval.runner import iter_records

__all__ = ["render_report", "write_report", "curve_png"]

logger = logging.getLogger(__name__)

FORMATS = ("md", "csv", "html")


def render_report(results: str | Path, fmt: str = "md") -> str:
    """The report of every record under ``results`` as text in ``fmt`` (md, csv or html)."""
    if fmt not in FORMATS:
        raise InvalidParameterError(f"Report format must be one of {FORMATS}. Got {fmt!r}.")
    records = list(iter_records(results))
    if not records:
        raise InvalidParameterError(
            f"No run records under {results}; run `zsvl eval ... --out {results}` first."
        )
    agg = aggregate(records)
    if fmt == "md":
        return to_markdown(agg) + "\n"
    if fmt == "csv":
        return to_csv(agg)
    return _html(agg, title=f"zsvl report: {Path(results).name}")


def write_report(results: str | Path, out: str | Path, fmt: str | None = None) -> Path:
    out = Path(out)
    fmt = fmt or out.suffix.lstrip(".") or "md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_report(results, fmt), encoding="utf-8")
    return out


def curve_png(agg: Aggregate, dataset: str) -> bytes:
    """Top-1 vs shots for each method on ``dataset`` (zero-shot methods as flat lines), PNG bytes."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.4), dpi=100)
    methods = agg.curves.get(dataset, {})
    max_shots = max((k for pts in methods.values() for k in pts), default=1) or 1
    for i, (method, points) in enumerate(methods.items()):
        color = f"C{i % 10}"
        shots = sorted(points)
        mean = np.array([points[k][0] for k in shots])
        std = np.array([points[k][1] for k in shots])
        if shots == [0]:
            ax.axhline(mean[0], linestyle="--", linewidth=1, color=color, label=method)
            continue
        ax.errorbar(shots, mean, yerr=std, marker="o", capsize=3, color=color, label=method)
    ax.set_xscale("symlog", base=2, linthresh=1)
    ax.set_xlim(-0.2, max_shots * 1.2)
    ax.set_xlabel("labelled images per class")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title(dataset)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _img_tag(data: bytes, alt: str, mime: str = "image/png", width: int | None = None) -> str:
    size = f' width="{width}"' if width else ""
    b64 = base64.b64encode(data).decode()
    return f'<img alt="{html.escape(alt)}" src="data:{mime};base64,{b64}"{size}>'


def _thumbnail(path: str) -> bytes | None:
    from PIL import Image

    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            image.thumbnail((96, 96))
            buf = io.BytesIO()
            image.save(buf, format="PNG")
            return buf.getvalue()
    except OSError:
        return None


def _md_table_to_html(md: str) -> str:
    out, in_table = [], False
    for line in md.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if set("".join(cells)) <= set("-: "):
                continue
            tag = "th" if not in_table else "td"
            if not in_table:
                out.append('<table class="results">')
                in_table = True
            out.append(
                "<tr>" + "".join(f"<{tag}>{html.escape(c)}</{tag}>" for c in cells) + "</tr>"
            )
        else:
            if in_table:
                out.append("</table>")
                in_table = False
            if line.strip():
                out.append(f"<p>{html.escape(line.lstrip('- '))}</p>")
    if in_table:
        out.append("</table>")
    return "\n".join(out)


def _examples_html(agg: Aggregate) -> str:
    parts = []
    for ds, examples in agg.examples.items():
        cards = []
        for ex in examples:
            thumb = _thumbnail(ex["source"])
            img = _img_tag(thumb, ex["truth"], width=96) if thumb else "(image missing)"
            top = "<br>".join(f"{html.escape(n)} {s:.2f}" for n, s in ex["top"])
            cards.append(
                f'<div class="ex">{img}<div><b>truth:</b> {html.escape(ex["truth"])}'
                f"<br>{top}</div></div>"
            )
        parts.append(f"<h3>{html.escape(ds)}</h3><div class='exs'>{''.join(cards)}</div>")
    for key, items in agg.explanations.items():
        rows = "".join(f"<li>{html.escape(_explain_line(e))}</li>" for e in items[:4])
        parts.append(f"<h3>Explanations: {html.escape(key)}</h3><ul>{rows}</ul>")
    return "\n".join(parts)


def _explain_line(item: dict[str, Any]) -> str:
    descs = ", ".join(f"{d} ({s:.2f})" for d, s in item.get("descriptors", [])[:4])
    return f"{item.get('source', '')}: {item.get('label', '')} because {descs}"


_CSS = """body{font-family:sans-serif;margin:2em;max-width:1200px}
table.results{border-collapse:collapse;margin:1em 0}
table.results td,table.results th{border:1px solid #ccc;padding:4px 8px;text-align:right}
table.results td:first-child,table.results th:first-child{text-align:left}
.plots img{margin:4px}.exs{display:flex;flex-wrap:wrap;gap:12px}
.ex img{image-rendering:pixelated}.ex{display:flex;gap:6px;font-size:12px;border:1px solid #eee;padding:4px}"""


def _html(agg: Aggregate, *, title: str) -> str:
    plots = "".join(_img_tag(curve_png(agg, ds), f"few-shot curve {ds}") for ds in agg.datasets)
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"
        f"<h2>Top-1 accuracy (%)</h2>{_md_table_to_html(to_markdown(agg))}"
        f"<h2>Few-shot curves</h2><div class='plots' id='plots'>{plots}</div>"
        f"<h2>Examples</h2>{_examples_html(agg)}</body></html>\n"
    )
