"""K-shot sampling from a dataset's splits, written as a small JSON manifest that can be cited.

CoOp's convention: K in {1, 2, 4, 8, 16} images per class from the train split, seeds 1, 2, 3, and
a validation set of min(K, 4) images per class from the val split. A class with fewer images than
asked gives all it has; that is logged and recorded in the manifest (``shortfalls``).

The draw for class c is ``numpy.random.default_rng((seed, stream, c))`` choosing without
replacement among the class's images in split-file order (stream 0 for train, 1 for val), so a
class's shots do not depend on the other classes. The manifest::

    {"format": "zsvl-fewshot/1", "dataset": ..., "shots": K, "seed": s, "val_shots": v,
     "root": "<folder the paths are relative to>", "classes": [...],
     "train": [["images/train/cat/0003.png", 0], ...], "val": [...],
     "shortfalls": [{"split": "train", "label": 7, "class": "...", "wanted": 16,
                     "available": 11}], "zsvl_version": ...}
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zsvl.classes import ClassSet
from zsvl.data.splits import Split
from zsvl.errors import InvalidParameterError

__all__ = [
    "COOP_SHOTS",
    "COOP_SEEDS",
    "MANIFEST_FORMAT",
    "Shortfall",
    "FewShotSplit",
    "sample_few_shot",
    "save_manifest",
    "load_manifest",
]

logger = logging.getLogger(__name__)

COOP_SHOTS = (1, 2, 4, 8, 16)
COOP_SEEDS = (1, 2, 3)
MANIFEST_FORMAT = "zsvl-fewshot/1"
_STREAM = {"train": 0, "val": 1}


@dataclass(frozen=True)
class Shortfall:
    """A class that had fewer images than asked for in one split."""

    split: str  # "train" or "val"
    label: int  # class index
    classname: str  # class name
    wanted: int  # images asked for
    available: int  # images the split holds (all were taken)


@dataclass(frozen=True)
class FewShotSplit:
    """The sampled shots (train) and the few-shot validation images of one (K, seed) draw."""

    shots: int  # K, images per class asked for from the train split
    seed: int  # the sampling seed
    val_shots: int  # images per class asked for from the val split (CoOp: min(K, 4))
    classes: ClassSet  # class names in label order
    train_paths: list[Path]  # sampled train images, class by class
    train_labels: list[int]  # label of each sampled train image
    val_paths: list[Path]  # sampled validation images (empty when there is no val split)
    val_labels: list[int]  # label of each validation image
    shortfalls: list[Shortfall] = field(default_factory=list)  # classes with too few images
    dataset: str | None = None  # dataset name, for the record
    root: Path | None = None  # folder the manifest stores paths relative to

    def to_dict(self) -> dict[str, Any]:
        """The JSON manifest (paths relative to ``root`` where possible)."""
        from zsvl._version import __version__

        def rel(path: Path) -> str:
            if self.root is not None:
                try:
                    return Path(path).relative_to(self.root).as_posix()
                except ValueError:
                    pass
            return str(path)

        return {
            "format": MANIFEST_FORMAT,
            "dataset": self.dataset,
            "shots": self.shots,
            "seed": self.seed,
            "val_shots": self.val_shots,
            "root": str(self.root) if self.root is not None else None,
            "classes": list(self.classes.names),
            "train": [
                [rel(p), lab] for p, lab in zip(self.train_paths, self.train_labels, strict=True)
            ],
            "val": [[rel(p), lab] for p, lab in zip(self.val_paths, self.val_labels, strict=True)],
            "shortfalls": [
                {
                    "split": s.split,
                    "label": s.label,
                    "class": s.classname,
                    "wanted": s.wanted,
                    "available": s.available,
                }
                for s in self.shortfalls
            ],
            "zsvl_version": __version__,
        }


def _draw(split: Split, k: int, seed: int, stream: int) -> tuple[list[int], list[Shortfall]]:
    """Indices into ``split`` of up to k images per class, and the classes that had fewer."""
    labels = np.asarray(split.labels, dtype=np.int64)
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(len(split.classes) + 1))
    picked: list[int] = []
    short: list[Shortfall] = []
    for c in range(len(split.classes)):  # one draw per class: each class has its own stream
        members = order[bounds[c] : bounds[c + 1]]
        if len(members) < k:
            short.append(Shortfall(split.name, c, split.classes[c], k, len(members)))
            take = members
        else:
            rng = np.random.default_rng((seed, stream, c))
            take = np.sort(rng.choice(members, size=k, replace=False))
        picked.extend(int(i) for i in take)
    return picked, short


def sample_few_shot(
    splits: Mapping[str, Split],
    shots: int,
    seed: int,
    *,
    val_shots: int | None = None,
    dataset: str | None = None,
    root: str | Path | None = None,
) -> FewShotSplit:
    """Draw K images per class from ``splits["train"]`` and min(K, 4) from ``splits["val"]``.

    splits : as returned by :func:`zsvl.data.splits.read_split_file` (a missing or empty
        "val" split gives an empty validation set; tune by cross-validation then).
    shots : K >= 1. seed : any int (CoOp uses 1, 2, 3). val_shots : default min(K, 4).
    root : folder the manifest stores paths relative to (default: the common folder).
    """
    if not isinstance(shots, (int, np.integer)) or isinstance(shots, bool) or shots < 1:
        raise InvalidParameterError(f"shots must be an int >= 1. Got {shots!r}.")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise InvalidParameterError(f"seed must be an int >= 0. Got {seed!r}.")
    val_k = min(int(shots), 4) if val_shots is None else int(val_shots)
    if val_k < 0:
        raise InvalidParameterError(f"val_shots must be an int >= 0. Got {val_shots!r}.")
    if "train" not in splits or len(splits["train"]) == 0:
        raise InvalidParameterError("sample_few_shot needs a non-empty 'train' split.")
    train = splits["train"]
    t_idx, shortfalls = _draw(train, int(shots), int(seed), _STREAM["train"])
    val = splits.get("val")
    v_idx: list[int] = []
    if val is not None and len(val) and val_k:
        if val.classes.names != train.classes.names:
            raise InvalidParameterError("The train and val splits have different class lists.")
        v_idx, short_val = _draw(val, val_k, int(seed), _STREAM["val"])
        shortfalls += short_val
    for s in shortfalls:
        logger.warning(
            "%s: class %d (%r) has %d %s images, fewer than the %d asked for; taking all of them.",
            dataset or "dataset",
            s.label,
            s.classname,
            s.available,
            s.split,
            s.wanted,
        )
    train_paths = [Path(train.paths[i]) for i in t_idx]
    val_paths = [Path(val.paths[i]) for i in v_idx] if val is not None else []
    if root is None and train_paths:
        root = Path(os.path.commonpath([str(p) for p in train_paths + val_paths]))
        root = root if root.is_dir() else root.parent
    return FewShotSplit(
        shots=int(shots),
        seed=int(seed),
        val_shots=val_k,
        classes=train.classes,
        train_paths=train_paths,
        train_labels=[int(train.labels[i]) for i in t_idx],
        val_paths=val_paths,
        val_labels=[int(val.labels[i]) for i in v_idx] if val is not None else [],
        shortfalls=shortfalls,
        dataset=dataset,
        root=Path(root) if root is not None else None,
    )


def save_manifest(fewshot: FewShotSplit, path: str | Path) -> Path:
    """Write the manifest JSON atomically (temporary file, fsync, rename); returns the path."""
    from zsvl._atomic import atomic_write_json

    return atomic_write_json(path, fewshot.to_dict(), indent=1, sort_keys=False)


def load_manifest(path: str | Path, *, root: str | Path | None = None) -> FewShotSplit:
    """Read a manifest written by :func:`save_manifest`; ``root`` relocates relative paths."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidParameterError(f"Cannot read few-shot manifest {path}: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise InvalidParameterError(
            f"{path} is not a zsvl few-shot manifest (format {MANIFEST_FORMAT!r})."
        )
    base = Path(root) if root is not None else (Path(data["root"]) if data.get("root") else None)

    def paths(rows: list[list[Any]]) -> tuple[list[Path], list[int]]:
        out = [Path(p) if base is None or Path(p).is_absolute() else base / p for p, _ in rows]
        return out, [int(lab) for _, lab in rows]

    train_paths, train_labels = paths(data["train"])
    val_paths, val_labels = paths(data["val"])
    shortfalls = [
        Shortfall(s["split"], int(s["label"]), s["class"], int(s["wanted"]), int(s["available"]))
        for s in data.get("shortfalls", [])
    ]
    return FewShotSplit(
        shots=int(data["shots"]),
        seed=int(data["seed"]),
        val_shots=int(data["val_shots"]),
        classes=ClassSet(tuple(data["classes"])),
        train_paths=train_paths,
        train_labels=train_labels,
        val_paths=val_paths,
        val_labels=val_labels,
        shortfalls=shortfalls,
        dataset=data.get("dataset"),
        root=base,
    )
