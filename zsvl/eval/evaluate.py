"""``evaluate()``: what ``zsvl eval`` does, as one library call."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from zsvl.data.check import DatasetReport, check_dataset
from zsvl.eval.runner import run_suite
from zsvl.eval.suite import Suite, load_suite

__all__ = ["evaluate", "check_suite"]

logger = logging.getLogger(__name__)


def _resolve(
    suite: str | Path | Suite, data_root: str | Path | None, overrides: dict[str, Any]
) -> tuple[Suite, Path]:
    chosen = suite if isinstance(suite, Suite) else load_suite(suite)
    chosen = chosen.with_overrides(**overrides)
    if data_root is None:
        if chosen.name != "toy":
            from zsvl.errors import InvalidParameterError

            raise InvalidParameterError(
                f"Suite {chosen.name!r} needs --data-root DIR (the folder holding the datasets)."
            )
        from zsvl.toy.suite import build_suite, default_suite_root

        data_root = build_suite(default_suite_root())
    return chosen, Path(data_root)


def check_suite(
    suite: str | Path | Suite,
    *,
    data_root: str | Path | None = None,
    decode: bool = True,
    **overrides: Any,
) -> list[DatasetReport]:
    """Check every dataset of a suite (files present, decodable, classes, sizes)."""
    chosen, root = _resolve(suite, data_root, overrides)
    return [check_dataset(info, root, decode=decode) for info in chosen.datasets]


def evaluate(
    suite: str | Path | Suite = "toy",
    *,
    model: Any = "toy",
    data_root: str | Path | None = None,
    out: str | Path = "results",
    **overrides: Any,
) -> list[dict[str, Any]]:
    """Run a suite and write one JSON record per (dataset, method, shots, seed) under ``out``.

    ``overrides``: methods, shots, seeds, datasets (lists) replacing the suite's own.
    """
    from zsvl.api import load_model

    chosen, root = _resolve(suite, data_root, overrides)
    encoder = load_model(model) if isinstance(model, str | tuple) else model
    return run_suite(chosen, data_root=root, encoder=encoder, out=out, model_spec=str(model))
