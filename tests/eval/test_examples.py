"""examples/compare_published.py: a clear hint without CoOp-11 records, a table with them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "compare_published.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120
    )


def _record(root, dataset: str, top1: float) -> None:
    """One ok zero-shot record, as zsvl eval writes it."""
    path = root / dataset / "zeroshot" / "k0.json"
    path.parent.mkdir(parents=True)
    record = {"dataset": dataset, "method": "zeroshot", "shots": 0, "status": "ok"}
    path.write_text(json.dumps({**record, "metrics": {"top1": top1}}))


def test_no_coop11_records_gives_a_hint_not_rows_of_nan(tmp_path):
    _record(tmp_path, "ToyShapes", 73.0)
    done = _run(str(tmp_path))
    assert done.returncode == 1 and "nan" not in done.stdout + done.stderr
    assert "No CoOp-11 records of zeroshot" in done.stderr and "--suite coop11" in done.stderr
    assert "ToyShapes" in done.stderr


def test_coop11_records_are_compared(tmp_path):
    _record(tmp_path, "DTD", 43.0)
    done = _run(str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "DTD              43.00      42.32   +0.68" in done.stdout
    assert "ImageNet       not run" in done.stdout
