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


def test_no_coop11_records_gives_a_hint_not_rows_of_nan(tmp_path):
    toy = tmp_path / "ToyShapes" / "zeroshot" / "k0.json"
    toy.parent.mkdir(parents=True)
    toy.write_text(
        json.dumps(
            {
                "dataset": "ToyShapes",
                "method": "zeroshot",
                "shots": 0,
                "status": "ok",
                "metrics": {"top1": 73.0},
            }
        )
    )
    done = _run(str(tmp_path))
    assert done.returncode == 1 and "nan" not in done.stdout + done.stderr
    assert "No CoOp-11 records of zeroshot" in done.stderr and "--suite coop11" in done.stderr
    assert "ToyShapes" in done.stderr


def test_coop11_records_are_compared(tmp_path):
    rec = tmp_path / "DTD" / "zeroshot" / "k0.json"
    rec.parent.mkdir(parents=True)
    rec.write_text(
        json.dumps(
            {
                "dataset": "DTD",
                "method": "zeroshot",
                "shots": 0,
                "status": "ok",
                "metrics": {"top1": 43.0},
            }
        )
    )
    done = _run(str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "DTD              43.00      42.32   +0.68" in done.stdout
    assert "ImageNet       not run" in done.stdout
