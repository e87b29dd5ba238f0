"""Dataset loaders for the CoOp layouts, ImageFolder and CSV, and the pre-encoding check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from zsvl.data.check import check_dataset
from zsvl.data.datasets import DatasetInfo, coop11_datasets, load_dataset
from zsvl.errors import InvalidParameterError


def _png(path: Path, colour=(255, 0, 0)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), colour).save(path)


def _info(name: str) -> DatasetInfo:
    return next(d for d in coop11_datasets() if d.name == name)


def test_coop11_table():
    table = coop11_datasets()
    assert [d.folder for d in table][:3] == ["imagenet", "caltech-101", "oxford_pets"]
    assert (
        sum(d.test_size for d in table)
        == 50000 + 2465 + 3669 + 8041 + 2463 + 30300 + 3333 + 19850 + 1692 + 8100 + 3783
    )


def test_split_json_layout_and_check(tmp_path: Path):
    info = _info("OxfordPets")
    folder = tmp_path / "oxford_pets"
    split = {
        "train": [["a/1.jpg", 0, "abyssinian"], ["b/1.jpg", 1, "beagle"]],
        "val": [["a/2.jpg", 0, "abyssinian"]],
        "test": [["a/3.jpg", 0, "abyssinian"], ["b/3.jpg", 1, "beagle"], ["b/4.jpg", 1, "beagle"]],
    }
    folder.mkdir()
    (folder / info.split_file).write_text(json.dumps(split))
    for rel in ["a/1.jpg", "b/1.jpg", "a/2.jpg", "a/3.jpg", "b/3.jpg"]:
        _png(folder / "images" / rel)
    (folder / "images" / "b" / "4.jpg").write_bytes(b"not a jpeg")
    splits = load_dataset(info, tmp_path)
    assert splits["test"].classes.names == ("abyssinian", "beagle")
    assert splits["test"].paths[0] == folder / "images" / "a" / "3.jpg"
    report = check_dataset(info, tmp_path)
    assert report.counts == {"train": 2, "val": 1, "test": 3}
    assert len(report.unreadable) == 1 and "4.jpg" in report.unreadable[0]
    assert any("standard split has 3669" in p for p in report.problems)
    (folder / "images" / "a" / "1.jpg").unlink()
    assert any("do not exist" in p for p in check_dataset(info, tmp_path).problems)


def test_missing_split_file_says_where_it_goes(tmp_path: Path):
    (tmp_path / "dtd").mkdir()
    with pytest.raises(InvalidParameterError, match="split_zhou_DescribableTextures.json.*CoOp"):
        load_dataset(_info("DTD"), tmp_path)
    report = check_dataset(_info("Food101"), tmp_path)
    assert not report.ok and "food-101" in report.problems[0]


def test_aircraft_text_files(tmp_path: Path):
    folder = tmp_path / "fgvc_aircraft"
    folder.mkdir()
    (folder / "variants.txt").write_text("707-320\nA300B4\n")
    for split, lines in {
        "train": "001 707-320\n002 A300B4\n",
        "val": "003 A300B4\n",
        "test": "004 707-320\n",
    }.items():
        (folder / f"images_variant_{split}.txt").write_text(lines)
    splits = load_dataset(_info("FGVCAircraft"), tmp_path)
    assert splits["train"].labels == [0, 1] and splits["test"].paths[0].name == "004.jpg"
    assert splits["val"].classes.names == ("707-320", "A300B4")


def test_imagenet_folders_use_open_clip_names(tmp_path: Path):
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

    val = tmp_path / "imagenet" / "images" / "val"
    for i in range(1000):
        (val / f"n{i:08d}").mkdir(parents=True)
    _png(val / "n00000000" / "x.JPEG")
    _png(val / "n00000999" / "y.JPEG")
    test = load_dataset(_info("ImageNet"), tmp_path)["test"]
    assert test.labels == [0, 999] and test.classes.names == tuple(IMAGENET_CLASSNAMES)


def test_imagefolder_and_csv(tmp_path: Path):
    _png(tmp_path / "birds" / "crow" / "1.png")
    _png(tmp_path / "birds" / "owl" / "1.png")
    info = DatasetInfo(name="Birds", folder="birds", kind="imagefolder")
    test = load_dataset(info, tmp_path)["test"]
    assert test.classes.names == ("crow", "owl") and test.labels == [0, 1]
    csv = tmp_path / "list.csv"
    csv.write_text("path,label,split\nbirds/crow/1.png,crow,train\nbirds/owl/1.png,owl,test\n")
    splits = load_dataset(DatasetInfo(name="C", folder=str(csv), kind="csv"), "/")
    assert len(splits["train"]) == 1 and splits["test"].labels == [1]
    csv.write_text("path,label,split\nx.png,crow,holdout\n")
    with pytest.raises(InvalidParameterError, match="split must be"):
        load_dataset(DatasetInfo(name="C", folder=str(csv), kind="csv"), "/")
