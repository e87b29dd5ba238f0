"""The zsvl command line, run in-process and once through the installed console script."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from zsvl.cli import main


def _some_images(toy_suite: Path, tmp_path: Path, n: int = 4) -> tuple[Path, list[str]]:
    from zsvl.data.splits import read_split_file
    from zsvl.toy.suite import TOY_DATASETS

    spec = TOY_DATASETS[0]
    test = read_split_file(toy_suite / spec.folder / spec.split_file)["test"]
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    for i in range(n):
        shutil.copy(test.paths[i], folder / "sub" / f"img{i}.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    return folder, list(test.classes.names)


def test_classify_json(toy_suite, tmp_path, capsys):
    folder, classes = _some_images(toy_suite, tmp_path)
    code = main(
        ["classify", str(folder), "--classes", *classes, "--model", "toy", "--json", "--top-k", "2"]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert len(out["results"]) == 4 and len(out["results"][0]["top_k"]) == 2
    assert out["skipped"][0]["source"].endswith("broken.jpg")
    assert all(r["label"] in classes for r in out["results"])


def test_classify_table_with_classes_file(toy_suite, tmp_path, capsys):
    folder, classes = _some_images(toy_suite, tmp_path)
    cf = tmp_path / "classes.txt"
    cf.write_text("\n".join(classes))
    assert main(["classify", str(folder / "sub"), "--classes-file", str(cf), "--model", "toy"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("image") and "img3.png" in out


def test_errors_exit_2_with_message(tmp_path, capsys):
    assert main(["classify", str(tmp_path), "--model", "toy"]) == 2
    assert "Give the classes with --classes" in capsys.readouterr().err
    assert (
        main(["classify", str(tmp_path), "--classes", "a", "b", "--model", "ViT-B32:openai"]) == 2
    )
    assert "Did you mean" in capsys.readouterr().err


def test_models_lists_aliases_and_openclip(capsys):
    assert main(["models", "--aliases-only"]) == 0
    assert capsys.readouterr().out.split() == ["toy"]
    assert main(["models"]) == 0
    assert "ViT-B-32:laion2b_s34b_b79k" in capsys.readouterr().out.split()


def test_console_script_installed():
    exe = Path(sys.executable).parent / "zsvl"
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("zsvl ")


def test_eval_then_report(toy_suite, tmp_path, capsys):
    out = tmp_path / "res"
    args = [
        "eval",
        "--suite",
        "toy",
        "--data-root",
        str(toy_suite),
        "--datasets",
        "ToyShapes",
        "--methods",
        "zeroshot",
        "--shots",
        "0",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    assert "1 runs written" in capsys.readouterr().out
    assert main(args) == 0  # resumed: nothing left to do
    assert "0 runs written" in capsys.readouterr().out
    assert main(["report", str(out)]) == 0
    assert "| zeroshot |" in capsys.readouterr().out
    assert main(["report", str(out), "--format", "html", "--out", str(tmp_path / "r.html")]) == 0
    assert (tmp_path / "r.html").read_text().count("<img") >= 2
    assert main(["eval", "--suite", "toy", "--data-root", str(toy_suite), "--check-only"]) == 0
    assert "ToyShapes: ok" in capsys.readouterr().out
    assert main(["eval", "--suite", "coop11", "--data-root", str(tmp_path), "--check-only"]) == 1
    report = capsys.readouterr().out
    assert "ImageNet: PROBLEMS" in report and "does not exist" in report
