"""The suite runner on the toy suite: records, resume, failures recorded, reports."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from zsvl.data.datasets import DatasetInfo, toy_datasets
from zsvl.errors import InvalidParameterError
from zsvl.eval.catalog import get_method, method_names
from zsvl.eval.registry import MethodResult, register
from zsvl.eval.report import render_report
from zsvl.eval.runner import record_path, run_suite
from zsvl.eval.suite import Suite, load_suite


def _small_suite(methods=("zeroshot", "classname")) -> Suite:
    coarse = [d for d in toy_datasets() if d.name == "ToyShapes"] or list(toy_datasets())[:1]
    return Suite("toy-small", tuple(coarse), methods=tuple(methods), shots=(0,), seeds=(1,))


def test_records_metrics_and_resume(toy_encoder, toy_suite, tmp_path):
    suite = _small_suite()
    out = tmp_path / "res"
    first = run_suite(suite, data_root=toy_suite, encoder=toy_encoder, out=out, model_spec="toy")
    assert {r["method"] for r in first} == {"zeroshot", "classname"}
    rec = json.loads(record_path(out, suite.datasets[0].name, "zeroshot", 0, None).read_text())
    assert rec["status"] == "ok" and rec["encoder_fingerprint"] == toy_encoder.fingerprint
    assert 0 <= rec["metrics"]["top1"] <= rec["metrics"]["top5"] <= 100
    assert rec["zsvl_version"] and rec["wall_time_s"] > 0 and rec["protocol"] == "zero-shot"
    assert len(rec["examples"]) == 4 and rec["examples"][0]["truth"]
    again = run_suite(suite, data_root=toy_suite, encoder=toy_encoder, out=out)
    assert again == []  # every record present: nothing recomputed


def test_zeroshot_record_matches_direct_computation(toy_encoder, toy_suite, tmp_path):
    from zsvl.data.datasets import load_dataset
    from zsvl.methods.zeroshot import ZeroShotClassifier

    suite = _small_suite(("zeroshot",))
    info = suite.datasets[0]
    rec = run_suite(suite, data_root=toy_suite, encoder=toy_encoder, out=tmp_path)[0]
    test = load_dataset(info, toy_suite)["test"]
    X = toy_encoder.encode_images(test.paths).embeddings
    clf = ZeroShotClassifier(toy_encoder, test.classes, templates=list(info.templates)).fit()
    expected = 100 * np.mean(clf.decision_function(X).argmax(1) == np.asarray(test.labels))
    assert rec["metrics"]["top1"] == pytest.approx(expected)


def test_a_failing_method_is_recorded_and_the_rest_runs(toy_encoder, toy_suite, tmp_path):
    @register("_always_fails", description="test only")
    def _fails(ctx):
        raise RuntimeError("boom")

    @register("_wrong_shape", description="test only")
    def _wrong(ctx):
        return MethodResult(np.zeros((1, 1)))

    suite = _small_suite(("_always_fails", "_wrong_shape", "zeroshot"))
    recs = {
        r["method"]: r
        for r in run_suite(suite, data_root=toy_suite, encoder=toy_encoder, out=tmp_path)
    }
    assert recs["_always_fails"]["status"] == "failed" and "boom" in recs["_always_fails"]["error"]
    assert recs["_wrong_shape"]["status"] == "failed" and "shape" in recs["_wrong_shape"]["error"]
    assert recs["zeroshot"]["status"] == "ok"
    assert "runs failed" in render_report(tmp_path, "md")


def test_a_broken_dataset_is_recorded_as_failed_runs(toy_encoder, tmp_path):
    bad = DatasetInfo(name="Missing", folder="nowhere", split_file="split.json")
    suite = Suite("s", (bad,), methods=("zeroshot",), shots=(0,), seeds=(1,))
    written = run_suite(suite, data_root=tmp_path, encoder=toy_encoder, out=tmp_path / "o")
    assert [r["status"] for r in written] == ["failed"]
    err = json.loads(record_path(tmp_path / "o", "Missing", "zeroshot", 0, None).read_text())
    assert err["error_kind"] == "dataset" and "does not exist" in err["error"]


def test_registry_and_suite_files(tmp_path: Path):
    assert {"zeroshot", "classname"} <= set(method_names())
    with pytest.raises(InvalidParameterError, match="Did you mean: zeroshot"):
        get_method("zeroshto")
    toml = tmp_path / "s.toml"
    toml.write_text(
        'name = "mine"\ndatasets = ["DTD", "Birds"]\nmethods = ["zeroshot"]\n'
        'shots = [0, 4]\nseeds = [7]\n[params.zeroshot]\ntemplates = ["{} texture."]\n'
        '[[dataset]]\nname = "Birds"\nfolder = "birds"\nkind = "imagefolder"\n'
    )
    suite = load_suite(toml)
    assert [d.name for d in suite.datasets] == ["DTD", "Birds"] and suite.seeds == (7,)
    assert suite.params["zeroshot"]["templates"] == ["{} texture."]
    assert len(load_suite("coop11").datasets) == 11
    toml.write_text('datasets = ["Nope"]\n')
    with pytest.raises(InvalidParameterError, match="Unknown datasets"):
        load_suite(toml)


def test_methods_that_name_instead_of_rank_get_vic_metrics(toy_encoder, toy_suite, tmp_path):
    @register("_names_truth_or_noise", description="test only")
    def _names(ctx):
        half = len(ctx.X_test) // 2  # a fixed guess per position, no labels involved
        return MethodResult(
            None, predicted_names=["circle"] * half + ["blob"] * (len(ctx.X_test) - half)
        )

    suite = _small_suite(("_names_truth_or_noise",))
    rec = run_suite(suite, data_root=toy_suite, encoder=toy_encoder, out=tmp_path)[0]
    assert rec["status"] == "ok" and rec["primary_metric"] == "cluster_accuracy"
    assert (
        0 < rec["metrics"]["cluster_accuracy"] <= 20
    )  # two names can match at most 2 of 10 classes
    assert "_names_truth_or_noise [cluster_accuracy]" in render_report(tmp_path, "md")


def test_progress_names_each_run_out_of_how_many_and_quiet_silences_it(
    toy_encoder, tiny_root, tmp_path, monkeypatch, capsys
):
    from zsvl._progress import set_quiet

    suite = _small_suite(("zeroshot", "classname"))
    monkeypatch.setenv("ZSVL_PROGRESS", "1")
    run_suite(suite, data_root=tiny_root, encoder=toy_encoder, out=tmp_path / "a")
    err = capsys.readouterr().err
    assert "[1/2] ToyShapes zeroshot 0-shot: top1 " in err
    assert "[2/2] ToyShapes classname 0-shot: top1 " in err and "eval:" in err  # the tqdm bar
    set_quiet()
    try:
        run_suite(suite, data_root=tiny_root, encoder=toy_encoder, out=tmp_path / "b")
    finally:
        set_quiet(False)
    assert capsys.readouterr().err == ""
