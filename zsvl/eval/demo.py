"""The offline main job: every registered method on the toy suite, then the report.

``zsvl demo`` = ``zsvl eval --suite toy --methods <all> --out results/toy`` followed by
``zsvl report results/toy`` (Markdown on stdout, HTML beside the records).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

__all__ = ["run_toy_demo", "public_methods"]

logger = logging.getLogger(__name__)


def public_methods() -> list[str]:
    """Every registered method except test-only ones (names starting with '_')."""
    from zsvl.eval.catalog import method_names

    return [m for m in method_names() if not m.startswith("_")]


def run_toy_demo(
    out: str | Path = "results/toy",
    *,
    model: Any = "toy",
    methods: list[str] | None = None,
    data_root: str | Path | None = None,
    retry_failed: bool = False,
) -> tuple[str, Path, float, Any]:
    """Run the toy suite; returns (Markdown report, HTML report path, seconds, EvalOutcome)."""
    from zsvl.eval.evaluate import evaluate
    from zsvl.eval.report import render_report, write_report

    start = time.perf_counter()
    outcome = evaluate(
        "toy",
        model=model,
        data_root=data_root,
        out=out,
        methods=methods or public_methods(),
        retry_failed=retry_failed,
    )
    html = write_report(out, Path(out) / "report.html", "html")
    return render_report(out, "md"), html, time.perf_counter() - start, outcome
