"""`zsvl index build|info|search` and `zsvl classify --vocabulary-free` with the toy CLIP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zsvl.cli import main
from zsvl.toy.captions import write_caption_corpus


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli_index")
    corpus = write_caption_corpus(root / "captions.txt", 1500, seed=3)
    out = root / "toy-index"
    assert (
        main(
            [
                "index",
                "build",
                str(corpus),
                "--model",
                "toy",
                "--out",
                str(out),
                "--shard-size",
                "500",
                "--max-memory",
                "256M",
            ]
        )
        == 0
    )
    return out


def test_build_info_search(built: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["index", "info", str(built), "--json", "--verify", "checksum"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["count"] == 1500 and info["factory"] == "Flat" and info["encoder"] == "toy"
    assert (
        main(
            [
                "index",
                "search",
                str(built),
                "--text",
                "a photo of a red star.",
                "a blue circle",
                "--k",
                "3",
                "--dedupe",
                "0.94",
                "--json",
            ]
        )
        == 0
    )
    records = json.loads(capsys.readouterr().out)
    assert [r["query"] for r in records] == ["a photo of a red star.", "a blue circle"]
    assert all(len(r["results"]) == 3 for r in records)
    assert "red" in records[0]["results"][0]["caption"]
    assert main(["index", "search", str(built), "--text", "a red star"]) == 0
    assert "a red star" in capsys.readouterr().out


def test_classify_vocabulary_free(
    built: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    from zsvl.toy.render import render_image

    for i in range(2):
        Image.fromarray(render_image(0, i, 900, shape="star", colour="red")[0]).save(
            tmp_path / f"star{i}.png"
        )
    capsys.readouterr()
    assert (
        main(
            [
                "classify",
                str(tmp_path),
                "--vocabulary-free",
                "--index",
                str(built),
                "--json",
                "--top-k",
                "3",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert len(out["results"]) == 2
    assert all(r["label"] and len(r["candidates"]) <= 3 for r in out["results"])


def test_errors_are_clear(built: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["index", "search", str(built), "--model", "ViT-B-32:random", "--text", "x"]) == 2
    assert "rebuild the index with this encoder" in capsys.readouterr().err
    assert main(["index", "build", "corpus.txt"]) == 2
    assert "Give CORPUS, --model and --out" in capsys.readouterr().err
    assert main(["classify", "x.png", "--vocabulary-free"]) == 2
    assert "needs --index" in capsys.readouterr().err
    assert main(["index", "info", str(built.parent / "nothing")]) == 2


def test_recipe_build(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recipe = tmp_path / "small.toml"
    recipe.write_text(
        'name = "small"\nmodel = "toy"\n[corpus]\npath = "toy:600:1"\n'
        '[index]\nshard_size = 256\nmax_memory = "64M"\n'
    )
    assert main(["index", "build", "--recipe", str(recipe)]) == 0
    assert (tmp_path / "small" / "manifest.json").is_file()
    assert "built" in capsys.readouterr().out
    recipe.write_text(
        'name = "bad"\nmodel = "toy"\n[corpus]\npath = "x.txt"\n[index]\nfactry = 1\n'
    )
    assert main(["index", "build", "--recipe", str(recipe)]) == 2
    assert "unknown keys: index.factry" in capsys.readouterr().err


def test_shipped_recipe_parses() -> None:
    from zsvl.index.recipe import read_recipe

    recipe = read_recipe(Path(__file__).resolve().parents[2] / "indexes" / "toy-captions.toml")
    assert (recipe.name, recipe.model, recipe.corpus) == ("toy-captions", "toy", "toy:50000")
    assert recipe.out.name == "toy-captions"
