"""zsvl fit / classify --classifier / --method --support, output flags, and one-line errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from zsvl.cli import build_parser, main


@pytest.fixture(scope="module")
def folders(toy_suite: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A support ImageFolder (3 shots of each ToyShapes class) and 10 query images."""
    from zsvl.data.splits import read_split_file
    from zsvl.toy.suite import TOY_DATASETS

    spec = TOY_DATASETS[0]
    split = read_split_file(toy_suite / spec.folder / spec.split_file)
    root = tmp_path_factory.mktemp("cli_fit")
    shots, query = root / "shots", root / "query"
    train = split["train"]
    taken: dict[int, int] = {}
    for path, label in zip(train.paths, train.labels, strict=True):
        if taken.get(label, 0) < 3:
            taken[label] = taken.get(label, 0) + 1
            folder = shots / train.classes.names[label]
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, folder / Path(path).name)
    query.mkdir()
    test = split["test"]
    for i in range(0, len(test), len(test) // 10)[:10]:
        shutil.copy(test.paths[i], query / f"q{i:04d}.png")
    classes = root / "classes.txt"
    classes.write_text("\n".join(train.classes.names), encoding="utf-8")
    return {"shots": shots, "query": query, "classes": classes, "root": root}


def _json(capsys) -> dict:  # noqa: ANN001
    return json.loads(capsys.readouterr().out)


def test_fit_then_classify_matches_the_one_call_path(folders, capsys, tmp_path):
    out = tmp_path / "clf.zsvl"
    args = [
        "fit",
        "--support",
        str(folders["shots"]),
        "--method",
        "tip",
        "--model",
        "toy",
        "--support-views",
        "2",
        "--out",
        str(out),
        "--json",
    ]
    assert main(args) == 0
    summary = _json(capsys)
    assert summary["method"] == "tip" and summary["search"] == "cv"
    assert set(summary["params"]) == {"alpha", "beta", "gamma"} and out.is_file()
    assert main(["classify", str(folders["query"]), "--classifier", str(out), "--json"]) == 0
    saved = _json(capsys)
    assert (
        main(
            [
                "classify",
                str(folders["query"]),
                "--support",
                str(folders["shots"]),
                "--method",
                "tip",
                "--model",
                "toy",
                "--support-views",
                "2",
                "--json",
            ]
        )
        == 0
    )
    direct = _json(capsys)
    assert direct["params"] == summary["params"]  # chosen on the shots alone, deterministic
    assert [r["label"] for r in saved["results"]] == [r["label"] for r in direct["results"]]
    for r in saved["results"]:
        assert saved["classes"][r["label_index"]] == r["label"]
        assert [t["label"] for t in r["top_k"]] == [
            saved["classes"][t["index"]] for t in r["top_k"]
        ]


def test_fit_positional_support_and_text_summary(folders, capsys, tmp_path):
    out = tmp_path / "g.zsvl"
    assert (
        main(
            [
                "fit",
                str(folders["shots"]),
                "--method",
                "gda",
                "--model",
                "toy",
                "--support-views",
                "2",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "saved a gda classifier for 10 classes" in text and "chosen by cv" in text


def test_output_flags_before_or_after_the_command(capsys):
    assert main(["--json", "models", "--aliases-only"]) == 0
    assert _json(capsys) == ["toy"]
    assert main(["models", "--aliases-only", "--json"]) == 0
    assert _json(capsys) == ["toy"]
    args = build_parser().parse_args(["-q", "index", "info", "x"])
    assert args.quiet_global and not args.json
    for argv in (["index", "info", "x", "--json"], ["--json", "index", "info", "x"]):
        from zsvl.cli_args import merge_output_flags

        assert merge_output_flags(build_parser().parse_args(argv)).json


def test_quiet_sets_the_progress_switch(folders, capsys):
    from zsvl import _progress

    try:
        assert (
            main(
                [
                    "--quiet",
                    "classify",
                    str(folders["query"]),
                    "--classes",
                    "circle",
                    "square",
                    "--model",
                    "toy",
                ]
            )
            == 0
        )
        assert _progress._quiet
        assert capsys.readouterr().err == ""
    finally:
        _progress.set_quiet(False)


def test_default_model_is_announced(monkeypatch, capsys, tmp_path):
    import zsvl.api

    seen = {}

    def fake_classify(paths, classes, **kw):  # noqa: ANN001, ANN003, ANN202
        seen.update(kw)
        raise zsvl.api.InvalidParameterError("stop here")

    monkeypatch.setattr(zsvl.api, "classify", fake_classify)
    assert main(["classify", str(tmp_path), "--classes", "a", "b"]) == 2
    err = capsys.readouterr().err
    assert "using the default model ViT-B-32:laion2b_s34b_b79k" in err and "--model toy" in err
    assert seen["model"] == "ViT-B-32:laion2b_s34b_b79k"


BAD = [
    (["classify", "Q", "--classes", "a", "--classes-file", "C"], "both given"),
    (["classify", "Q", "--classifier", "F", "--classes", "a"], "leave out --classes"),
    (["classify", "Q", "--classifier", "F", "--method", "tip"], "leave out --method"),
    (
        ["classify", "Q", "--vocabulary-free", "--index", "I", "--classes", "a"],
        "without a class list",
    ),
    (["classify", "Q", "--classes", "a", "--index", "I"], "caption-support"),
    (["classify", "Q", "--classes", "a", "--support", "S"], "does not use support"),
    (["classify", "Q", "--classes", "a", "--method", "gda"], "needs labelled support"),
    (["classify", "Q", "--classes", "a", "--method", "cbd"], "needs descriptors"),
    (["classify", "Q", "--classes", "a", "--method", "fudd"], "class-pair descriptions"),
    (["classify", "Q", "--classes", "a", "--method", "caption-support"], "caption index"),
    (["classify", "Q", "--classes", "a", "--support-views", "3"], "needs --support"),
    (
        [
            "classify",
            "Q",
            "--classes",
            "a",
            "--descriptors",
            "D",
            "--method",
            "tip",
            "--support",
            "S",
        ],
        "does not use descriptors",
    ),
    (
        [
            "classify",
            "Q",
            "--classes",
            "a",
            "--method",
            "cbd",
            "--descriptors",
            "D",
            "--templates",
            "single",
        ],
        "does not use prompt templates",
    ),
    (["classify", "Q", "--classes", "a", "--explain", "2", "--method", "tip"], "--explain"),
    (["fit", "--classes", "a", "--method", "gda", "--out", "o.zsvl"], "needs labelled support"),
    (["fit", "S", "--support", "T", "--method", "gda", "--out", "o.zsvl"], "support folder once"),
]


@pytest.mark.parametrize(("argv", "message"), BAD)
def test_conflicting_flags_are_refused_in_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith("zsvl ")


def test_bad_inputs_are_one_line_errors(folders, capsys, tmp_path):
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9\nna\xefve\n".encode("latin-1"))
    bad_json = tmp_path / "classes.json"
    bad_json.write_text('["cat", "dog",', encoding="utf-8")
    not_list = tmp_path / "obj.json"
    not_list.write_text('{"classes": 3}', encoding="utf-8")
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n\n", encoding="utf-8")
    broken = tmp_path / "broken.zsvl"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    stray = tmp_path / "shots"
    (stray / "zebra").mkdir(parents=True)
    shutil.copy(next(folders["shots"].rglob("*.png")), stray / "zebra" / "a.png")
    q = str(folders["query"])
    cases = [
        (["classify", q, "--classes-file", str(latin), "--model", "toy"], "not UTF-8"),
        (["classify", q, "--classes-file", str(bad_json), "--model", "toy"], "not valid JSON"),
        (["classify", q, "--classes-file", str(not_list), "--model", "toy"], "JSON list"),
        (["classify", q, "--classes-file", str(empty), "--model", "toy"], "holds no class"),
        (["classify", q, "--classes-file", str(tmp_path), "--model", "toy"], "is a folder"),
        (["classify", q, "--classifier", str(broken)], "not a zsvl classifier file"),
        (["classify", q, "--classifier", str(tmp_path / "none.zsvl")], "does not exist"),
        (
            [
                "classify",
                q,
                "--support",
                str(tmp_path / "nope"),
                "--method",
                "tip",
                "--classes",
                "a",
                "--model",
                "toy",
            ],
            "does not exist",
        ),
        (
            [
                "classify",
                q,
                "--support",
                str(stray),
                "--method",
                "tip",
                "--classes-file",
                str(folders["classes"]),
                "--model",
                "toy",
            ],
            "name no class",
        ),
        (
            [
                "fit",
                str(tmp_path / "emptydir"),
                "--method",
                "gda",
                "--model",
                "toy",
                "--out",
                str(tmp_path / "o.zsvl"),
            ],
            "does not exist",
        ),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (argv, err)


def test_saved_classifier_refuses_another_model(folders, capsys, tmp_path):
    out = tmp_path / "z.zsvl"
    assert (
        main(
            [
                "fit",
                "--classes-file",
                str(folders["classes"]),
                "--model",
                "toy",
                "--out",
                str(out),
                "-q",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert (
        main(
            [
                "classify",
                str(folders["query"]),
                "--classifier",
                str(out),
                "--model",
                "ViT-B-32:random",
            ]
        )
        == 2
    )
    assert "fitted with the encoder" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["classify", "x", "--classes", "a", "--batch-size", "0"],
        ["classify", "x", "--classes", "a", "--top-k", "-1"],
        ["classify", "x", "--classes", "a", "--method", "tipx"],
    ],
)
def test_bad_numbers_and_names_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_list_action_accepts_spaces_and_commas():
    import argparse

    from zsvl.cli_args import ListAction

    parser = argparse.ArgumentParser()
    parser.add_argument("--shots", action=ListAction, convert=int)
    parser.add_argument("--methods", action=ListAction)
    for argv in (["--shots", "0", "1", "2"], ["--shots", "0,1,2"], ["--shots", "0,1", "2"]):
        assert parser.parse_args(argv).shots == [0, 1, 2]
    assert parser.parse_args(["--methods", "zeroshot,tip", "gda"]).methods == [
        "zeroshot",
        "tip",
        "gda",
    ]
    with pytest.raises(SystemExit):
        parser.parse_args(["--shots", "1,x"])


def test_no_traceback_through_the_console_script(tmp_path):
    latin = tmp_path / "c.txt"
    latin.write_bytes(b"caf\xe9\n")
    exe = Path(sys.executable).parent / "zsvl"
    done = subprocess.run(
        [str(exe), "classify", str(tmp_path), "--classes-file", str(latin), "--model", "toy"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "not UTF-8" in done.stderr
    assert done.stderr.count("\n") == 1


def test_result_indices_and_names_agree(folders, toy_encoder):
    import zsvl

    names = folders["classes"].read_text().split("\n")
    result = zsvl.classify(folders["query"], names, model=toy_encoder, top_k=3)
    assert [names[i] for i in result.label_indices] == result.labels
    assert [[names[i] for i in row] for row in result.topk_indices] == result.topk_labels
    np.testing.assert_allclose(result.scores, result.probs.max(1))


def test_third_party_warnings_and_bars_are_kept_out_of_the_way(monkeypatch, capsys):
    import os
    import warnings

    import zsvl.cli_classify

    zsvl_file = zsvl.cli_classify.__file__
    env = dict(os.environ)
    env.pop("HF_HUB_DISABLE_PROGRESS_BARS", None)
    monkeypatch.setattr(os, "environ", env)

    def command(args):  # noqa: ANN001, ANN202
        warnings.warn_explicit("a library speaks", FutureWarning, "/lib/site-packages/x.py", 1)
        warnings.warn_explicit("zsvl speaks", UserWarning, zsvl_file, 1)
        return 0

    monkeypatch.setattr(zsvl.cli_classify, "_cmd_classify", command)
    assert main(["classify", "x", "--classes", "a"]) == 0
    err = capsys.readouterr().err
    assert err == "zsvl: warning: zsvl speaks\n"
    assert env["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"
    assert main(["-v", "classify", "x", "--classes", "a"]) == 0
    assert "a library speaks" in capsys.readouterr().err
