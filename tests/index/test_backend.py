"""Issue 13: FAISS is an extra (CPU or GPU build), and its absence is one clear error."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from zsvl.errors import ZsvlError
from zsvl.index.backend import FaissMissingError, import_faiss

ROOT = Path(__file__).resolve().parents[2]


def test_missing_faiss_names_both_builds(monkeypatch, tmp_path) -> None:
    monkeypatch.setitem(sys.modules, "faiss", None)  # what `import faiss` sees when absent
    with pytest.raises(FaissMissingError, match=r"zsvl\[faiss-cpu\].*zsvl\[faiss-gpu\]"):
        import_faiss()
    assert issubclass(FaissMissingError, ZsvlError) and issubclass(FaissMissingError, ImportError)
    from zsvl.index import build_index

    corpus = tmp_path / "c.txt"
    corpus.write_text("a red circle\na blue square\n")

    class Encoder:
        fingerprint, embed_dim = "fake", 4

        def encode_texts(self, texts, batch_size=256):
            import numpy as np

            return np.eye(4, dtype="float32")[: len(texts)]

    with pytest.raises(FaissMissingError, match="Caption indexes need FAISS"):
        build_index(corpus, Encoder(), tmp_path / "ix")


def test_cli_without_faiss_prints_one_line(tmp_path, monkeypatch, capsys) -> None:
    from zsvl.cli import main

    corpus = tmp_path / "c.txt"
    corpus.write_text("a red circle\na blue square\n")
    monkeypatch.setitem(sys.modules, "faiss", None)
    code = main(["index", "build", str(corpus), "--model", "toy", "--out", str(tmp_path / "ix")])
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err
    assert "zsvl[faiss-cpu]" in err and "zsvl[faiss-gpu]" in err
    assert not (tmp_path / "ix" / "embeddings").exists()  # nothing was encoded


def test_pyproject_offers_faiss_as_extras_and_declares_what_is_imported() -> None:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = [d.split(">")[0].split("=")[0].split("[")[0].strip().lower()
             for d in project["dependencies"]]  # fmt: skip
    assert not any(n.startswith("faiss") for n in names)
    assert {"scipy", "huggingface_hub"} <= set(names)
    extras = project["optional-dependencies"]
    assert extras["faiss-cpu"] == ["faiss-cpu>=1.8"] and extras["faiss-gpu"] == ["faiss-gpu>=1.8"]
    makefile = (ROOT / "Makefile").read_text()
    dev_install = makefile.split(".dev:")[1].split("touch")[0]
    assert '-e ".[faiss-cpu]"' in makefile and "faiss-cpu" in dev_install
