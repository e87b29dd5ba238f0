"""Every registered method through the runner on a tiny toy suite: a method that breaks in
``make demo`` breaks this test (fast: 3 test images per class, a 300-caption index)."""

from __future__ import annotations

import math

from zsvl.data.datasets import toy_datasets
from zsvl.eval.demo import public_methods
from zsvl.eval.records import read_record
from zsvl.eval.report import render_report
from zsvl.eval.runner import plan_runs, run_suite
from zsvl.eval.suite import Suite


def test_every_registered_method_runs_through_the_runner(toy_encoder, tiny_root, tmp_path):
    methods = public_methods()
    assert {"zeroshot", "tip", "gda", "teen", "retrieval", "vocab-free"} <= set(methods)
    info = next(d for d in toy_datasets() if d.name == "ToyShapes")
    suite = Suite(
        "tiny",
        (info,),
        methods=tuple(methods),
        shots=(0, 1),
        seeds=(1,),
        params={
            "retrieval": {"per_class": 2},
            "tip": {"n_views": 2},
            "gda": {"n_views": 2},
            "vocab-free": {"semantic_similarity": False},  # the MiniLM load is tested elsewhere
        },
    )
    out = tmp_path / "res"
    written = run_suite(suite, data_root=tiny_root, encoder=toy_encoder, out=out, model_spec="toy")
    planned = plan_runs(suite)
    assert len(written) == len(planned) >= len(methods)
    failed = {r["method"]: r.get("error") for r in written if r["status"] != "ok"}
    assert failed == {}
    for spec in planned:
        record = read_record(spec.path(out))
        value = record["metrics"][record["primary_metric"]]
        assert value is not None and math.isfinite(value) and 0 <= value <= 100, spec.label
        assert record["split_sizes"] == {"train": 40, "val": 20, "test": 30}
        assert record["validation"] and record["encoder_fingerprint"] == toy_encoder.fingerprint
    md = render_report(out, "md")
    for method in methods:
        assert f"| {method}" in md, method
