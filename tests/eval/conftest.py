"""A tiny copy of the toy suite (a few images per class) that tests may damage and repair."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from zsvl.data.datasets import toy_datasets

PER_SPLIT = {"train": 4, "val": 2, "test": 3}  # images per class kept from each toy split


def make_tiny_root(toy_suite: Path, root: Path, names=("ToyShapes",), captions: int = 300) -> Path:
    """Copy the first few images per class of the named toy datasets (and ``captions`` lines of
    the toy caption corpus) into ``root``, in the same CoOp layout."""
    for info in (d for d in toy_datasets() if d.name in names):
        src = toy_suite / info.folder
        splits = json.loads((src / info.split_file).read_text())
        kept: dict[str, list] = {}
        for split, n in PER_SPLIT.items():
            seen: dict[int, int] = {}
            kept[split] = []
            for rel, label, name in splits[split]:
                if seen.get(label, 0) < n:
                    seen[label] = seen.get(label, 0) + 1
                    kept[split].append([rel, label, name])
                    (root / info.folder / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(src / rel, root / info.folder / rel)
        (root / info.folder / info.split_file).write_text(json.dumps(kept))
    lines = (toy_suite / "captions" / "toy_captions.txt").read_text().splitlines()[:captions]
    (root / "captions").mkdir(parents=True, exist_ok=True)
    (root / "captions" / "toy_captions.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="session")
def tiny_root(toy_suite: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ToyShapes and ToyTextures cut to 4/2/3 images per class; do not modify (copy first)."""
    return make_tiny_root(
        toy_suite, tmp_path_factory.mktemp("tiny_suite"), ("ToyShapes", "ToyTextures")
    )


@pytest.fixture(autouse=True)
def _progress_not_quiet():
    """``zsvl eval --quiet`` silences the process; each test starts and ends un-silenced."""
    from zsvl._progress import set_quiet

    set_quiet(False)
    yield
    set_quiet(False)
