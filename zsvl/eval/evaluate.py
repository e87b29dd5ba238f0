"""``evaluate()``: what ``zsvl eval`` does, as one library call.

Order of work: resolve the suite and refuse bad values; list the runs; check the data layout of
every dataset that has pending runs (before any model is loaded, so a wrong ``--data-root`` costs
a second, not a model download); load the model; run; read back the state of every run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zsvl.data.check import DatasetReport, check_dataset
from zsvl.errors import InvalidParameterError, ZsvlError
from zsvl.eval.records import RunSpec, read_record
from zsvl.eval.runner import pending_runs, plan_runs, run_suite
from zsvl.eval.suite import Suite, load_suite

__all__ = ["evaluate", "check_suite", "EvalOutcome", "DataLayoutError"]

logger = logging.getLogger(__name__)


class DataLayoutError(ZsvlError):
    """No dataset of the suite is where the suite expects it."""


@dataclass
class EvalOutcome:
    """What a call to :func:`evaluate` did and where the results folder now stands."""

    out: Path
    planned: list[RunSpec]  # every run of the suite
    written: list[dict[str, Any]]  # records written by this call
    failed: list[tuple[RunSpec, dict[str, Any] | None]] = field(default_factory=list)

    @classmethod
    def collect(
        cls, out: Path, planned: list[RunSpec], written: list[dict[str, Any]]
    ) -> EvalOutcome:
        """The outcome as the results folder now stands: every planned run without an ok
        record (read back, so a run recorded by an earlier or retried attempt counts once)."""
        failed = []
        for spec in planned:
            record = read_record(spec.path(out))
            if record is None or record["status"] != "ok":
                failed.append((spec, record))
        return cls(out, planned, written, failed)

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        """One line, then one line per failed run (at most 20)."""
        new_fail = sum(r["status"] != "ok" for r in self.written)
        already = len(self.planned) - len(self.written)
        head = (
            f"{len(self.written)} runs written to {self.out} ({new_fail} failed); "
            f"{already} of the suite's {len(self.planned)} runs were already done."
        )
        if not self.failed:
            return head + f" `zsvl report {self.out}` makes the table."
        lines = [head, f"{len(self.failed)} runs FAILED:"]
        for spec, record in self.failed[:20]:
            why = "no record" if record is None else record.get("error", "?")
            lines.append(f"  - {spec.label}: {why}")
        if len(self.failed) > 20:
            lines.append(f"  ... and {len(self.failed) - 20} more")
        if any(r is not None and r.get("error_kind") == "method" for _, r in self.failed):
            lines.append("Fix the cause and rerun with --retry-failed to redo failed methods.")
        return "\n".join(lines)


def _resolve(
    suite: str | Path | Suite, data_root: str | Path | None, overrides: dict[str, Any]
) -> tuple[Suite, Path]:
    chosen = suite if isinstance(suite, Suite) else load_suite(suite)
    chosen = chosen.with_overrides(**overrides)
    if data_root is None:
        if chosen.name != "toy":
            raise InvalidParameterError(
                f"Suite {chosen.name!r} needs --data-root DIR (the folder holding the datasets)."
            )
        import time

        from zsvl._progress import progress_line
        from zsvl.toy.suite import build_suite, default_suite_root

        start = time.perf_counter()
        data_root = build_suite(default_suite_root())  # renders the images on the first call
        if time.perf_counter() - start > 2:
            progress_line(
                f"toy suite written to {data_root} in {time.perf_counter() - start:.0f} s"
            )
    root = Path(data_root).expanduser()
    if not root.is_dir():
        raise DataLayoutError(
            f"--data-root {data_root} is not a folder. Point it at the folder that holds the "
            f"datasets ({', '.join(i.folder for i in chosen.datasets[:3])}, ...)."
        )
    return chosen, root


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


def _check_layout(todo: list[RunSpec], root: Path) -> None:
    """Refuse to start when no dataset with pending runs passes its (non-decoding) check."""
    infos = list({id(spec.dataset): spec.dataset for spec in todo}.values())
    reports = [check_dataset(info, root, decode=False) for info in infos]
    if infos and not any(r.ok for r in reports):
        details = "\n".join(r.summary() for r in reports[:11])
        raise DataLayoutError(
            f"No dataset of the suite is usable under {root}; nothing was run and no model "
            f"was loaded.\n{details}"
        )
    for report in reports:
        if not report.ok:
            logger.warning("%s", report.summary())


def evaluate(
    suite: str | Path | Suite = "toy",
    *,
    model: Any = "toy",
    data_root: str | Path | None = None,
    out: str | Path = "results",
    retry_failed: bool = False,
    **overrides: Any,
) -> EvalOutcome:
    """Run a suite and write one JSON record per (dataset, method, shots, seed) under ``out``.

    ``overrides``: methods, shots, seeds, datasets (lists) replacing the suite's own. Runs with a
    trustworthy record are skipped; failed methods are redone only with ``retry_failed``.
    """
    chosen, root = _resolve(suite, data_root, overrides)
    out = Path(out)
    planned = plan_runs(chosen)
    if not planned:
        raise InvalidParameterError(
            f"Nothing to run: methods {', '.join(chosen.methods)} with shots "
            f"{list(chosen.shots)}. Zero-shot methods run only when the shots include 0; "
            f"few-shot methods need a shot count > 0."
        )
    todo = pending_runs(planned, out, retry_failed=retry_failed)
    written: list[dict[str, Any]] = []
    if todo:
        _check_layout(todo, root)
        if isinstance(model, str | tuple):
            from zsvl.embed import load_model

            encoder = load_model(model)
        else:
            encoder = model
        written = run_suite(
            chosen,
            data_root=root,
            encoder=encoder,
            out=out,
            model_spec=str(model) if isinstance(model, str | tuple) else _spec_of(encoder),
            retry_failed=retry_failed,
        )
    return EvalOutcome.collect(out, planned, written)


def _spec_of(encoder: Any) -> str:
    return str(
        getattr(encoder, "spec", "") or getattr(encoder, "name", "") or type(encoder).__name__
    )
