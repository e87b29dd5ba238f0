"""Evaluation datasets: the CoOp 11-dataset layout, the toy suite, ImageFolder and CSV datasets.

A dataset is described by a frozen :class:`DatasetInfo` (data, read from prompts/datasets/*.json
for the CoOp suite) and loaded into ``{"train", "val", "test"} -> Split`` by :func:`load_dataset`.
Layouts:

- ``split_json``: CoOp's ``split_zhou_<Name>.json`` (or the toy suite's ``split_zsvl_*``) in the
  dataset folder, paths relative to ``image_dir``;
- ``aircraft``: FGVC-Aircraft's ``images_variant_{train,val,test}.txt`` ("<image id> <variant>")
  and ``images/<id>.jpg``;
- ``imagenet``: ``images/train/<wnid>/*`` and ``images/val/<wnid>/*`` (val is the test split),
  class names from open_clip's ``IMAGENET_CLASSNAMES`` in sorted-wnid order;
- ``imagefolder``: ``<folder>/<class>/*`` (every image is a test image);
- ``csv``: a ``path,label[,split]`` file, paths relative to the file.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from zsvl.classes import ClassSet
from zsvl.data.splits import Split, read_split_file
from zsvl.errors import InvalidParameterError
from zsvl.paths import prompts_dir

__all__ = ["DatasetInfo", "load_dataset", "coop11_datasets", "toy_datasets", "dataset_folder"]

_KINDS = ("split_json", "aircraft", "imagenet", "imagefolder", "csv")


@dataclass(frozen=True)
class DatasetInfo:
    """Where a dataset lives under a data root and how to read it."""

    name: str  # display name ("OxfordPets")
    folder: str  # folder under the data root ("oxford_pets"), or a file for kind "csv"
    kind: str = "split_json"  # one of split_json, aircraft, imagenet, imagefolder, csv
    split_file: str | None = None  # split JSON inside the folder (split_json only)
    image_dir: str = ""  # image paths are relative to folder/image_dir
    templates: str | tuple[str, ...] = "single"  # template set name or explicit templates
    test_size: int | None = None  # expected number of test images, when known

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise InvalidParameterError(f"Dataset kind must be one of {_KINDS}. Got {self.kind!r}.")
        if self.kind == "split_json" and not self.split_file:
            raise InvalidParameterError(f"Dataset {self.name}: kind 'split_json' needs split_file.")


def dataset_folder(info: DatasetInfo, data_root: str | Path) -> Path:
    return Path(data_root).expanduser() / info.folder


def coop11_datasets() -> tuple[DatasetInfo, ...]:
    """The 11 CoOp datasets, from prompts/datasets/coop11.json."""
    data = json.loads((prompts_dir() / "datasets" / "coop11.json").read_text(encoding="utf-8"))
    return tuple(DatasetInfo(**entry) for entry in data["datasets"])


def toy_datasets() -> tuple[DatasetInfo, ...]:
    """The toy suite's datasets (written by ``zsvl.toy.suite.build_suite``)."""
    from zsvl.toy.suite import TOY_DATASETS

    return tuple(
        DatasetInfo(
            name=s.name,
            folder=s.folder,
            kind="split_json",
            split_file=s.split_file,
            templates=(s.template,),
        )
        for s in TOY_DATASETS
    )


def load_dataset(info: DatasetInfo, data_root: str | Path) -> dict[str, Split]:
    """Read a dataset's splits (paths are not opened here; see ``zsvl.data.check``)."""
    folder = dataset_folder(info, data_root)
    if info.kind == "csv":
        return _load_csv(folder)
    if not folder.is_dir():
        raise InvalidParameterError(
            f"Dataset {info.name}: folder {folder} does not exist. Put the dataset in "
            f"<data-root>/{info.folder}/ (CoOp layout) or pass the right --data-root."
        )
    if info.kind == "split_json":
        split_file = folder / str(info.split_file)
        if not split_file.is_file():
            raise InvalidParameterError(
                f"Dataset {info.name}: split file {split_file.name} is missing from {folder}. "
                f"Download CoOp's {split_file.name} (linked from CoOp's DATASETS.md) into that folder."
            )
        return read_split_file(split_file, image_root=folder / info.image_dir)
    if info.kind == "aircraft":
        return _load_aircraft(folder, info.image_dir)
    if info.kind == "imagenet":
        return _load_imagenet(folder / info.image_dir)
    return _load_imagefolder(folder)


def _load_aircraft(folder: Path, image_dir: str) -> dict[str, Split]:
    variants_file = folder / "variants.txt"
    if not variants_file.is_file():
        raise InvalidParameterError(
            f"FGVCAircraft: {variants_file} is missing; copy fgvc-aircraft-2013b/data/* "
            f"(variants.txt, images_variant_*.txt, images/) into {folder}."
        )
    names = [line.strip() for line in variants_file.read_text().splitlines() if line.strip()]
    classes = ClassSet(tuple(names))
    label_of = {name: i for i, name in enumerate(names)}
    splits = {}
    for split in ("train", "val", "test"):
        listing = folder / f"images_variant_{split}.txt"
        if not listing.is_file():
            raise InvalidParameterError(f"FGVCAircraft: {listing} is missing.")
        paths, labels = [], []
        for line in listing.read_text().splitlines():
            if not line.strip():
                continue
            image_id, _, variant = line.strip().partition(" ")
            if variant not in label_of:
                raise InvalidParameterError(
                    f"{listing}: variant {variant!r} is not in variants.txt."
                )
            paths.append(folder / image_dir / f"{image_id}.jpg")
            labels.append(label_of[variant])
        splits[split] = Split(split, paths, labels, classes)
    return splits


def _load_imagenet(images: Path) -> dict[str, Split]:
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

    train_dir, val_dir = images / "train", images / "val"
    if not val_dir.is_dir():
        raise InvalidParameterError(
            f"ImageNet: {val_dir} is missing. Expected images/train/<wnid>/*.JPEG and "
            f"images/val/<wnid>/*.JPEG (validation images sorted into wnid folders)."
        )
    wnids = sorted(p.name for p in val_dir.iterdir() if p.is_dir())
    if len(wnids) != len(IMAGENET_CLASSNAMES):
        raise InvalidParameterError(
            f"ImageNet: {val_dir} has {len(wnids)} class folders; expected "
            f"{len(IMAGENET_CLASSNAMES)} wnid folders (n01440764, ...)."
        )
    classes = ClassSet(tuple(IMAGENET_CLASSNAMES))
    splits = {"test": _folder_split("test", val_dir, wnids, classes)}
    splits["train"] = (
        _folder_split("train", train_dir, wnids, classes)
        if train_dir.is_dir()
        else Split("train", [], [], classes)
    )
    splits["val"] = Split("val", [], [], classes)
    return splits


def _load_imagefolder(folder: Path) -> dict[str, Split]:
    names = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if not names:
        raise InvalidParameterError(f"{folder} has no class subfolders (<folder>/<class>/<image>).")
    classes = ClassSet(tuple(names))
    empty = {s: Split(s, [], [], classes) for s in ("train", "val")}
    return {**empty, "test": _folder_split("test", folder, names, classes)}


def _folder_split(name: str, folder: Path, subdirs: list[str], classes: ClassSet) -> Split:
    from zsvl.data.inputs import scan_folder

    paths, labels = [], []
    for label, sub in enumerate(subdirs):
        files = scan_folder(folder / sub) if (folder / sub).is_dir() else []
        paths += files
        labels += [label] * len(files)
    return Split(name, paths, labels, classes)


def _load_csv(path: Path) -> dict[str, Split]:
    if not path.is_file():
        raise InvalidParameterError(f"CSV dataset {path} does not exist.")
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or not {"path", "label"} <= set(rows[0]):
        raise InvalidParameterError(f"{path} needs a header with columns path,label[,split].")
    names = sorted({row["label"] for row in rows})
    classes = ClassSet(tuple(names))
    label_of = {n: i for i, n in enumerate(names)}
    out: dict[str, tuple[list[Path], list[int]]] = {s: ([], []) for s in ("train", "val", "test")}
    for line, row in enumerate(rows, start=2):
        split = (row.get("split") or "test").strip()
        if split not in out:
            raise InvalidParameterError(
                f"{path}:{line}: split must be train, val or test. Got {split!r}."
            )
        out[split][0].append(path.parent / row["path"])
        out[split][1].append(label_of[row["label"]])
    return {s: Split(s, p, lab, classes) for s, (p, lab) in out.items()}
