"""prompts/ (and the toy model) are found from the editable install and from a built wheel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PROBE = (
    "import json, zsvl.paths as p, zsvl.text.templates as t, zsvl.toy.model as m;"
    "print(json.dumps({'prompts': str(p.prompts_dir()), 'dtd': t.load_templates('coop:dtd'),"
    " 'n80': len(t.load_templates('imagenet80')), 'ckpt': str(m.toy_checkpoint_path()),"
    " 'ckpt_exists': m.toy_checkpoint_path().is_file()}))"
)


def _probe(cwd: Path, env: dict[str, str]) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def test_source_tree_reads_repository_prompts():
    """The fast twin of the probe below, in this interpreter (tests import zsvl from the repo)."""
    import zsvl.paths as p
    import zsvl.text.templates as t
    import zsvl.toy.model as m

    assert p.prompts_dir() == REPO / "prompts"
    assert (
        list(t.load_templates("coop:dtd")) == ["{} texture."]
        and len(t.load_templates("imagenet80")) == 80
    )
    assert m.toy_checkpoint_path().is_file()


@pytest.mark.slow  # a new interpreter importing zsvl's model code: ~20-30 s on a busy machine
def test_editable_install_reads_repository_prompts(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    report = _probe(tmp_path, env)  # cwd outside the repo: resolved through the installed package
    assert Path(report["prompts"]) == REPO / "prompts"
    assert report["dtd"] == ["{} texture."] and report["n80"] == 80 and report["ckpt_exists"]


@pytest.mark.slow
def test_wheel_carries_prompts_and_toy_model(tmp_path: Path):
    dist = tmp_path / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(dist),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next(dist.glob("zsvl-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "zsvl/_prompts/templates/single.json",
        "zsvl/_prompts/templates/coop.json",
        "zsvl/toy/weights/toy-clip.pt",
        "zsvl/py.typed",
    ):
        assert required in names, required
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    report = _probe(tmp_path, env)
    assert Path(report["prompts"]).is_relative_to(site)
    assert Path(report["ckpt"]).is_relative_to(site) and report["ckpt_exists"]
    assert report["dtd"] == ["{} texture."] and report["n80"] == 80
