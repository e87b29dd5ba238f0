"""The toy suite on disk: CoOp layout, schema, disjoint splits, idempotence."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from zsvl.toy.suite import (
    CAPTION_LINES,
    SPLIT_SIZES,
    TOY_DATASETS,
    build_suite,
    default_suite_root,
    get_toy_dataset,
    render_split,
    split_scenes,
)
from zsvl.toy.train import TRAIN_STREAM
from zsvl.toy.world import sample_scene, scene_rng


@pytest.fixture(scope="module")
def suite(toy_suite: Path) -> Path:
    """The session's toy suite (tests/conftest.py builds it once for every test folder).

    The full suite in a run with slow tests, else the small one: the tests below read the sizes
    from its manifest.
    """
    return toy_suite


def _per_class(suite: Path) -> dict[str, int]:
    """Images per class in each split of a built suite."""
    manifest = json.loads((suite / "manifest.json").read_text())
    return manifest.get("per_class") or dict(SPLIT_SIZES)


def test_specs_name_the_three_datasets():
    assert [s.name for s in TOY_DATASETS] == ["ToyShapes", "ToyFine", "ToyTextures"]
    for spec in TOY_DATASETS:
        assert spec.split_file == f"split_zsvl_{spec.name}.json"
        assert spec.template.count("{}") == 1
        assert len(set(spec.classnames)) == len(spec.classnames)
    assert len(get_toy_dataset("ToyFine").classnames) >= 40
    with pytest.raises(ValueError, match="Unknown toy dataset 'ToyBirds'"):
        get_toy_dataset("ToyBirds")


def test_split_files_follow_the_coop_schema(suite: Path):
    per_class = _per_class(suite)
    for spec in TOY_DATASETS:
        folder = suite / spec.folder
        names = (folder / "classnames.txt").read_text().splitlines()
        assert tuple(names) == spec.classnames
        splits = json.loads((folder / spec.split_file).read_text())
        assert set(splits) == {"train", "val", "test"}
        for split, records in splits.items():
            assert len(records) == per_class[split] * len(names)
            for rel, label, classname in records:
                assert isinstance(rel, str) and isinstance(label, int)
                assert names[label] == classname and not Path(rel).is_absolute()
            rel, label, _ = records[-1]
            with Image.open(folder / rel) as img:
                assert img.mode == "RGB" and img.size == (32, 32)
    captions = (suite / "captions" / "toy_captions.txt").read_text().splitlines()
    lines = json.loads((suite / "manifest.json").read_text())["captions"]["lines"]
    assert len(captions) == lines >= 1000 and all(captions)


def test_split_images_are_disjoint(suite: Path):
    spec = get_toy_dataset("ToyFine")
    splits = json.loads((suite / spec.folder / spec.split_file).read_text())
    paths = [r[0] for records in splits.values() for r in records]
    assert len(paths) == len(set(paths))
    pixels = {
        split: {np.asarray(Image.open(suite / spec.folder / r[0])).tobytes() for r in records[:200]}
        for split, records in splits.items()
    }
    assert not pixels["train"] & pixels["test"] and not pixels["val"] & pixels["test"]
    assert not pixels["train"] & pixels["val"]


def test_split_scenes_are_not_clip_training_scenes():
    spec = get_toy_dataset("ToyShapes")
    test = {scene for scene, _ in split_scenes(spec, "test", per_class=5)}
    training = {sample_scene(scene_rng(0, i, TRAIN_STREAM)) for i in range(2000)}
    assert not test & training


def test_pngs_equal_the_in_memory_render(suite: Path):
    spec = get_toy_dataset("ToyTextures")
    images, labels = render_split(spec, "val", per_class=2)
    splits = json.loads((suite / spec.folder / spec.split_file).read_text())
    per_class = _per_class(suite)["val"]
    for k, (image, label) in enumerate(zip(images, labels, strict=True)):
        rel, file_label, _ = splits["val"][(k // 2) * per_class + k % 2]
        assert file_label == label
        np.testing.assert_array_equal(np.asarray(Image.open(suite / spec.folder / rel)), image)


def test_build_suite_is_idempotent(suite: Path):
    manifest = suite / "manifest.json"
    before = manifest.stat().st_mtime_ns
    lines = json.loads(manifest.read_text())["captions"]["lines"]
    size = {"per_class": _per_class(suite), "caption_lines": lines}
    assert build_suite(suite, **size) == suite
    assert manifest.stat().st_mtime_ns == before
    with pytest.raises(ValueError, match="overwrite=True"):
        build_suite(suite, seed=1, **size)


def test_incomplete_suite_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import zsvl.toy.suite as suite_module

    monkeypatch.setattr(suite_module, "SPLIT_SIZES", {"train": 1, "val": 1, "test": 1})
    monkeypatch.setattr(suite_module, "CAPTION_LINES", 10)
    root = tmp_path / "s"
    build_suite(root)
    (root / "manifest.json").unlink()
    spec = TOY_DATASETS[0]
    (root / spec.folder / spec.split_file).write_text("{torn")
    build_suite(root)
    assert json.loads((root / spec.folder / spec.split_file).read_text())["test"]
    assert json.loads((root / "manifest.json").read_text())["seed"] == 0


def test_default_root_lives_under_zsvl_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ZSVL_HOME", str(tmp_path))
    root = default_suite_root()
    assert root.parent == tmp_path / "toy-suite" and root.name.startswith("v")


def test_toy_fine_has_its_own_tone_curve_and_the_others_none():
    from dataclasses import replace

    from zsvl.toy.render import render_scene
    from zsvl.toy.world import dataset_style

    assert dataset_style("ToyFine") == {"gamma": 2.2}
    assert dataset_style("ToyShapes") == {} and dataset_style("ToyTextures") == {}
    assert sample_scene(scene_rng(0, 0, TRAIN_STREAM)).gamma == 1.0  # the CLIP's training pool
    fine = [scene for scene, _ in split_scenes(get_toy_dataset("ToyFine"), "val", per_class=1)]
    assert {scene.gamma for scene in fine} == {2.2}
    for scene in fine[:5]:
        plain = replace(scene, gamma=1.0, noise=0.0)
        styled = replace(scene, noise=0.0)
        expected = 255.0 * (render_scene(plain).astype(float) / 255.0) ** 2.2
        # rounding: 0.5 before the curve (slope <= 2.2) and 0.5 after it
        assert np.abs(render_scene(styled) - expected).max() <= 0.5 * 2.2 + 0.5


def _tree(root: Path) -> dict[str, bytes]:
    """Every file of a suite but the manifest: relative path -> bytes."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and p.name != "manifest.json"
    }


def _assert_subset(small: Path, full: Path, keep: dict[str, int], caption_lines: int) -> None:
    """``small``'s files are ``full``'s, byte for byte, and its records the first ``keep``."""
    small_files, full_files = _tree(small), _tree(full)
    for rel, data in small_files.items():
        if rel.endswith(".png"):
            assert data == full_files[rel], rel
    captions = full_files["captions/toy_captions.txt"].decode().splitlines(keepends=True)
    assert small_files["captions/toy_captions.txt"].decode() == "".join(captions[:caption_lines])
    for spec in TOY_DATASETS:
        ours = json.loads(small_files[f"{spec.folder}/{spec.split_file}"])
        theirs = json.loads(full_files[f"{spec.folder}/{spec.split_file}"])
        for split, records in theirs.items():
            per_label: dict[int, list] = {}
            for record in records:
                per_label.setdefault(record[1], []).append(record)
            assert ours[split] == [
                r for label in sorted(per_label) for r in per_label[label][: keep[split]]
            ]
        names = f"{spec.folder}/classnames.txt"
        assert small_files[names] == full_files[names]
    pngs = {rel for rel in small_files if rel.endswith(".png")}
    assert len(pngs) == sum(keep.values()) * sum(len(s.classnames) for s in TOY_DATASETS)


def test_small_suite_is_the_first_images_of_the_full_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A small suite holds the full suite's files (fast: on a suite of 2/2/2 images per class)."""
    import zsvl.toy.suite as suite_module

    monkeypatch.setattr(suite_module, "SPLIT_SIZES", {"train": 2, "val": 2, "test": 2})
    monkeypatch.setattr(suite_module, "CAPTION_LINES", 30)
    full = build_suite(tmp_path / "full")
    keep = {"train": 1, "val": 1, "test": 2}
    small = build_suite(tmp_path / "small", per_class={"train": 1, "val": 1}, caption_lines=7)
    _assert_subset(small, full, keep, 7)
    manifest = json.loads((small / "manifest.json").read_text())
    assert manifest["per_class"] == keep and manifest["captions"]["lines"] == 7
    assert "per_class" not in json.loads((full / "manifest.json").read_text())
    assert build_suite(small, per_class={"train": 1, "val": 1}, caption_lines=7) == small
    with pytest.raises(ValueError, match="overwrite=True"):
        build_suite(small)  # the full suite was asked for
    with pytest.raises(ValueError, match="overwrite=True"):
        build_suite(full, per_class=1)
    with pytest.raises(ValueError, match="Unknown split"):
        build_suite(tmp_path / "x", per_class={"tests": 1})
    with pytest.raises(ValueError, match="at least one image"):
        build_suite(tmp_path / "x", per_class=0)


@pytest.mark.slow
def test_full_suite_sizes_and_the_fast_runs_small_suite(
    suite: Path, small_toy_suite_args: dict, tmp_path: Path
):
    """The full suite has SPLIT_SIZES images per class; the fast run's suite is its subset."""
    manifest = json.loads((suite / "manifest.json").read_text())
    assert "per_class" not in manifest, "a run with slow tests must get the full toy suite"
    for entry in manifest["datasets"]:
        n = len(get_toy_dataset(entry["name"]).classnames)
        assert entry["counts"] == {split: size * n for split, size in SPLIT_SIZES.items()}
    captions = (suite / "captions" / "toy_captions.txt").read_text().splitlines()
    assert len(captions) == CAPTION_LINES and all(captions)
    small = build_suite(tmp_path / "small", **small_toy_suite_args)
    keep = {**SPLIT_SIZES, **small_toy_suite_args["per_class"]}
    _assert_subset(small, suite, keep, small_toy_suite_args["caption_lines"])
