"""``zsvl eval --ray``: the suite's runs on a two-node cluster give the local records; a worker
killed before or after writing a record costs a retry, never a second record."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ray_helpers import Hooks, KillOnce  # noqa: E402

pytestmark = pytest.mark.slow

CHOICE = dict(methods=["zeroshot", "tip"], shots=[0, 2], seeds=[1], datasets=["ToyShapes"])


def _key(record: dict) -> tuple:
    return record["dataset"], record["method"], record["shots"], record["seed"]


def test_eval_on_ray_matches_local_and_writes_each_record_once(
    tmp_path: Path, toy_suite, ray_cluster, capsys
) -> None:
    from zsvl.cli import main
    from zsvl.distributed import evaluate_on_ray
    from zsvl.eval.evaluate import evaluate
    from zsvl.eval.records import record_path

    local = evaluate(
        "toy", model="toy", data_root=toy_suite, out=tmp_path / "local", **CHOICE
    ).written
    out = tmp_path / "ray"
    first = record_path(out, "ToyShapes", "zeroshot", 0, None)  # unit 0 in plan order
    markers = tmp_path / "markers"
    markers.mkdir()
    after_write = KillOnce(markers, "eval-done", 0, snapshot=str(first))
    before_run = KillOnce(markers, "eval", 1)
    outcome = evaluate_on_ray(
        "toy",
        model="toy",
        data_root=toy_suite,
        out=out,
        address=ray_cluster.address,
        hook=Hooks(after_write, before_run),
        **CHOICE,
    )
    assert outcome.ok
    records = outcome.written
    assert after_write.marker().is_file() and before_run.marker().is_file()
    assert (markers / "snapshot").read_bytes() == first.read_bytes()  # not written again
    files = [p for p in out.glob("*/*/*.json") if not p.parts[-3].startswith("_")]  # not scratch
    assert len(files) == len(local) == len(records) == 2
    by_key = {_key(r): r for r in records}
    for rec in local:
        got = by_key[_key(rec)]
        assert got["status"] == rec["status"] == "ok"
        assert got["metrics"] == pytest.approx(rec["metrics"])

    capsys.readouterr()
    rc = main(
        [
            "eval",
            "--ray",
            ray_cluster.address,
            "--data-root",
            str(toy_suite),
            "--methods",
            "zeroshot,tip",
            "--shots",
            "0,2",
            "--seeds",
            "1",
            "--datasets",
            "ToyShapes",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    assert "2 runs" in capsys.readouterr().out
    assert json.loads(first.read_bytes()) == json.loads((markers / "snapshot").read_bytes())
