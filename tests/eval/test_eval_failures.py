"""``zsvl eval`` never hides a failure (issue 11.3) and fails fast on a wrong setup (12.2).

Each test reproduces a fault a user met: a dataset that fails its check reported as success,
damaged records never redone, failed runs never retried, stale failures in the report, bad
``--shots`` accepted, a model loaded before a missing data root is noticed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from zsvl.cli import main
from zsvl.data.datasets import toy_datasets
from zsvl.errors import InvalidParameterError
from zsvl.eval.evaluate import DataLayoutError, evaluate
from zsvl.eval.registry import MethodResult, register
from zsvl.eval.report import render_report
from zsvl.eval.suite import Suite
from zsvl.methods.zeroshot import ZeroShotClassifier

TWO = tuple(d for d in toy_datasets() if d.name in ("ToyShapes", "ToyTextures"))


def _copy(tiny_root: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_root, tmp_path / "data"))


def _suite(*methods: str) -> Suite:
    return Suite("tiny", TWO, methods=methods or ("zeroshot",), shots=(0,), seeds=(1,))


def test_a_dataset_failing_its_check_fails_the_run_until_the_data_is_fixed(
    toy_encoder, tiny_root, tmp_path
):
    data, out = _copy(tiny_root, tmp_path), tmp_path / "res"
    image = data / "toy_shapes" / "images" / "test" / "circle" / "0000.png"
    kept = image.read_bytes()
    image.unlink()
    first = evaluate(_suite(), model=toy_encoder, data_root=data, out=out)
    assert not first.ok and [s.dataset.name for s, _ in first.failed] == ["ToyShapes"]
    assert first.failed[0][1]["error_kind"] == "dataset"
    assert "ToyShapes zeroshot 0-shot" in first.summary() and "do not exist" in first.summary()
    assert "1 runs failed" in render_report(out, "md")
    image.write_bytes(kept)  # the user fixes the data and runs the same command again
    second = evaluate(_suite(), model=toy_encoder, data_root=data, out=out)
    assert second.ok and [r["dataset"] for r in second.written] == ["ToyShapes"]
    assert "failed" not in render_report(out, "md")  # only the latest state of each run


def test_unreadable_records_are_redone(toy_encoder, tiny_root, tmp_path):
    out = tmp_path / "res"
    evaluate(
        _suite("zeroshot", "classname", "cbd"), model=toy_encoder, data_root=tiny_root, out=out
    )
    damaged = {
        out / "ToyShapes" / "zeroshot" / "k0.json": None,  # truncated
        out / "ToyShapes" / "classname" / "k0.json": b"",  # empty
        out / "ToyTextures" / "cbd" / "k0.json": b'{"method": "cbd"}',  # no status
    }
    for path, data in damaged.items():
        path.write_bytes(path.read_bytes()[:40] if data is None else data)
    assert "3 record files are unreadable" in render_report(out, "md")
    again = evaluate(
        _suite("zeroshot", "classname", "cbd"), model=toy_encoder, data_root=tiny_root, out=out
    )
    assert again.ok and len(again.written) == 3
    assert {(r["dataset"], r["method"]) for r in again.written} == {
        ("ToyShapes", "zeroshot"),
        ("ToyShapes", "classname"),
        ("ToyTextures", "cbd"),
    }
    assert "unreadable" not in render_report(out, "md")


_BROKEN = {"on": True}


@register("_fails_until_fixed", description="test only")
def _fails_until_fixed(ctx):
    if _BROKEN["on"]:
        raise RuntimeError("boom")
    clf = ZeroShotClassifier(ctx.encoder, ctx.classes, templates=ctx.templates).fit()
    return MethodResult(clf.decision_function(ctx.X_test))


def test_failed_methods_are_kept_then_retried_on_request(toy_encoder, tiny_root, tmp_path):
    out, suite = tmp_path / "res", _suite("_fails_until_fixed")
    _BROKEN["on"] = True
    first = evaluate(suite, model=toy_encoder, data_root=tiny_root, out=out)
    assert len(first.failed) == 2 and "RuntimeError: boom" in first.summary()
    assert "--retry-failed" in first.summary()
    _BROKEN["on"] = False
    plain = evaluate(suite, model=toy_encoder, data_root=tiny_root, out=out)
    assert plain.written == [] and len(plain.failed) == 2  # still failing, still reported
    retried = evaluate(suite, model=toy_encoder, data_root=tiny_root, out=out, retry_failed=True)
    assert retried.ok and len(retried.written) == 2
    md = render_report(out, "md")
    assert "failed" not in md and "_fails_until_fixed" in md


def test_cli_exit_code_and_message_name_the_failed_runs(tiny_root, tmp_path, capsys):
    data = _copy(tiny_root, tmp_path)
    shutil.rmtree(data / "toy_textures" / "images" / "test")
    suite = tmp_path / "s.toml"
    suite.write_text(
        'datasets = ["ToyShapes", "ToyTextures"]\nmethods = ["zeroshot"]\n'
        "shots = [0]\nseeds = [1]\n"
    )
    argv = ["eval", "--suite", str(suite), "--data-root", str(data), "--out", str(tmp_path / "r")]
    assert main([*argv, "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "1 runs FAILED" in err and "ToyTextures zeroshot 0-shot" in err
    # the rerun has only ToyTextures left to do: refused before loading the model, still named
    assert main([*argv, "--quiet"]) == 2
    assert "ToyTextures: PROBLEMS" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--shots", "-1"], "shots must be integers >= 0"),
        (["--seeds", "1,1"], "seeds lists a value twice"),
        (["--shots", "4", "--methods", "zeroshot"], "Nothing to run"),
        (["--methods", "zeroshto"], "Did you mean: zeroshot"),
    ],
)
def test_bad_values_are_refused_with_a_clear_error(args, message, tmp_path, capsys):
    assert main(["eval", "--data-root", str(tmp_path), "--out", str(tmp_path / "r"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_shots_that_are_not_integers_are_an_argument_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["eval", "--shots", "1,two"])
    assert exit_.value.code == 2 and "expected int values" in capsys.readouterr().err


def test_coop11_data_layout_is_checked_before_any_model_loads(tmp_path, monkeypatch, capsys):
    import zsvl.api

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the data was checked")

    monkeypatch.setattr(zsvl.api, "load_model", no_model)
    argv = ["eval", "--suite", "coop11", "--model", "ViT-B-16:openai", "--out", str(tmp_path)]
    assert main([*argv, "--data-root", str(tmp_path / "nowhere")]) == 2
    assert "nowhere is not a folder" in capsys.readouterr().err
    (tmp_path / "data").mkdir()
    assert main([*argv, "--data-root", str(tmp_path / "data"), "--datasets", "OxfordPets"]) == 2
    err = capsys.readouterr().err
    assert "no model was loaded" in err and "oxford_pets" in err
    with pytest.raises(DataLayoutError):
        evaluate("coop11", model="ViT-B-16:openai", data_root=tmp_path / "data")


def test_report_finds_the_records_below_the_folder_it_is_given(toy_encoder, tiny_root, tmp_path):
    evaluate(_suite(), model=toy_encoder, data_root=tiny_root, out=tmp_path / "results" / "toy")
    assert "| zeroshot |" in render_report(tmp_path / "results", "md")  # `make demo`, then this
    evaluate(_suite(), model=toy_encoder, data_root=tiny_root, out=tmp_path / "results" / "b")
    with pytest.raises(InvalidParameterError, match="results folders below it"):
        render_report(tmp_path / "results", "md")
    with pytest.raises(InvalidParameterError, match="make demo"):
        render_report(tmp_path / "results" / "toy" / "ToyShapes" / "zeroshot", "md")
