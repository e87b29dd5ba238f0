"""The toy evaluation suite, written to disk in the CoOp layout.

Each dataset folder holds ``images/<split>/<class>/<n>.png``, ``classnames.txt`` (label order) and
``split_zsvl_<Name>.json`` = ``{"train": [[relative_path, label, classname], ...], "val": [...],
"test": [...]}``. ``<root>/captions/toy_captions.txt`` is the toy caption corpus. A
``manifest.json`` written last (atomically) marks a complete suite, so :func:`build_suite` is
idempotent. ``build_suite(root, per_class=...)`` writes a smaller suite whose files are a subset of
the full suite's, byte for byte (the first n images of every class, the first lines of the
captions): the fast tests use one. Every image is a pure function of ``(seed, dataset, split,
index)`` and is drawn from the same distribution as, but never equal to, the images the tiny CLIP
was trained on, except for a dataset's style (ToyFine's tone curve, see
:func:`zsvl.toy.world.dataset_style`).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from zsvl._atomic import atomic_write_text
from zsvl.errors import InvalidParameterError
from zsvl.toy.captions import write_caption_corpus
from zsvl.toy.render import render_scene, render_scenes
from zsvl.toy.world import (
    Scene,
    ToyDatasetSpec,
    dataset_classes,
    dataset_nuisance,
    dataset_style,
    load_world,
    sample_scene,
    scene_rng,
)

__all__ = [
    "GENERATOR_VERSION",
    "SPLIT_SIZES",
    "TOY_DATASETS",
    "ToyDatasetSpec",
    "get_toy_dataset",
    "split_scenes",
    "render_split",
    "build_suite",
    "default_suite_root",
]

logger = logging.getLogger(__name__)

GENERATOR_VERSION = "2"  # bump when the renderer, world.json or the layout changes the output
SPLIT_SIZES = {"train": 32, "val": 8, "test": 40}  # images per class in each split
CAPTION_LINES = 40_000  # lines of captions/toy_captions.txt
MANIFEST = "manifest.json"
_SPLIT_STREAM = {"train": 0, "val": 1, "test": 2}
_FIRST_STREAM = 100  # scene_rng streams below this belong to CLIP training and the captions


def _make_spec(entry: dict[str, Any]) -> ToyDatasetSpec:
    name = entry["name"]
    return ToyDatasetSpec(
        name=name,
        folder=entry["folder"],
        split_file=f"split_zsvl_{name}.json",
        classnames=tuple(c.name for c in dataset_classes(name)),
        template=entry["template"],
    )


TOY_DATASETS: tuple[ToyDatasetSpec, ...] = tuple(_make_spec(d) for d in load_world()["datasets"])


def get_toy_dataset(name: str) -> ToyDatasetSpec:
    """The spec of toy dataset ``name`` ("ToyShapes", "ToyFine", "ToyTextures")."""
    for spec in TOY_DATASETS:
        if spec.name == name:
            return spec
    raise ValueError(
        f"Unknown toy dataset {name!r}; expected one of {[s.name for s in TOY_DATASETS]}."
    )


def split_scenes(
    spec: ToyDatasetSpec, split: str, seed: int = 0, per_class: int | None = None
) -> list[tuple[Scene, int]]:
    """The (scene, label) pairs of one split, class by class; ``per_class`` keeps the first n."""
    if split not in _SPLIT_STREAM:
        raise ValueError(f"Unknown split {split!r}; expected one of {list(_SPLIT_STREAM)}.")
    position = [s.name for s in TOY_DATASETS].index(spec.name)
    stream = _FIRST_STREAM + 10 * position + _SPLIT_STREAM[split]
    total = SPLIT_SIZES[split]
    keep = total if per_class is None else min(per_class, total)
    nuisance = dataset_nuisance(spec.name)
    style: dict[str, Any] = dict(dataset_style(spec.name))  # Scene field -> value, for replace()
    out = []
    for label, toy_class in enumerate(dataset_classes(spec.name)):
        fixed: dict[str, str | Sequence[str]] = {**nuisance, **toy_class.attributes}
        for j in range(keep):
            rng = scene_rng(seed, label * total + j, stream)
            out.append((replace(sample_scene(rng, **fixed), **style), label))
    return out


def render_split(
    spec: ToyDatasetSpec, split: str, seed: int = 0, per_class: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Images (n, H, W, 3) uint8 and labels (n,) int64 of a split, identical to the PNG files."""
    pairs = split_scenes(spec, split, seed, per_class)
    images = render_scenes([scene for scene, _ in pairs])
    return images, np.array([label for _, label in pairs], dtype=np.int64)


def _split_keep(per_class: int | Mapping[str, int] | None) -> dict[str, int]:
    """Images per class to write in each split (at most the full suite's)."""
    if per_class is None:
        return dict(SPLIT_SIZES)
    wanted = per_class if isinstance(per_class, Mapping) else dict.fromkeys(SPLIT_SIZES, per_class)
    unknown = set(wanted) - set(SPLIT_SIZES)
    if unknown:
        raise InvalidParameterError(
            f"Unknown split(s) {sorted(unknown)} in per_class; expected {list(SPLIT_SIZES)}."
        )
    keep = {
        split: min(int(wanted.get(split, total)), total) for split, total in SPLIT_SIZES.items()
    }
    if min(keep.values()) < 1:
        raise InvalidParameterError(
            f"per_class must keep at least one image per class; got {per_class!r}."
        )
    return keep


def _write_dataset(
    root: Path, spec: ToyDatasetSpec, seed: int, keep: Mapping[str, int]
) -> dict[str, int]:
    from PIL import Image

    folder = root / spec.folder
    splits: dict[str, list[list[Any]]] = {}
    for split in SPLIT_SIZES:
        records = []
        counters = [0] * len(spec.classnames)
        for scene, label in split_scenes(spec, split, seed, keep[split]):
            classname = spec.classnames[label]
            rel = f"images/{split}/{classname.replace(' ', '_')}/{counters[label]:04d}.png"
            counters[label] += 1
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(render_scene(scene)).save(folder / rel, compress_level=1)
            records.append([rel, label, classname])
        splits[split] = records
    atomic_write_text(folder / "classnames.txt", "".join(f"{c}\n" for c in spec.classnames))
    atomic_write_text(folder / spec.split_file, json.dumps(splits))
    return {split: len(records) for split, records in splits.items()}


def _read_manifest(root: Path) -> dict[str, Any] | None:
    try:
        return json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def build_suite(
    root: Path | str,
    *,
    seed: int = 0,
    overwrite: bool = False,
    per_class: int | Mapping[str, int] | None = None,
    caption_lines: int | None = None,
) -> Path:
    """Write the toy suite under ``root`` (see the module docstring) and return ``root``.

    per_class : None for the full suite (:data:`SPLIT_SIZES` images per class), else the number
        of images per class to keep in every split (an int, or ``{"train": 8, "test": 8}``;
        splits not named stay full). The kept images are the full suite's first n per class,
        byte-identical and under the same names.
    caption_lines : lines of the caption corpus (default :data:`CAPTION_LINES`), the first lines
        of the full corpus.

    Returns at once when ``root`` already holds a complete suite of this generator version,
    seed and size. A complete suite of another one is an error unless ``overwrite``.
    """
    root = Path(root)
    keep = _split_keep(per_class)
    lines = CAPTION_LINES if caption_lines is None else int(caption_lines)
    if lines < 1:
        raise InvalidParameterError(f"caption_lines must be at least 1; got {caption_lines!r}.")
    small = keep != SPLIT_SIZES
    manifest = _read_manifest(root)
    wanted = {"generator_version": GENERATOR_VERSION, "seed": int(seed)}
    size = {"per_class": keep if small else None, "caption_lines": lines}
    if manifest is not None and not overwrite:
        found = {k: manifest.get(k) for k in wanted}
        found["per_class"] = manifest.get("per_class")
        found["caption_lines"] = manifest.get("captions", {}).get("lines")
        asked = {**wanted, **size}
        if found == asked:
            return root
        raise InvalidParameterError(
            f"{root} holds a toy suite built with {found}, but {asked} was asked for; "
            "pass overwrite=True to rebuild it or choose another root."
        )
    if overwrite:
        (root / MANIFEST).unlink(missing_ok=True)
        for spec in TOY_DATASETS:
            shutil.rmtree(root / spec.folder, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    counts = {spec.name: _write_dataset(root, spec, seed, keep) for spec in TOY_DATASETS}
    captions = write_caption_corpus(root / "captions" / "toy_captions.txt", lines, seed)
    manifest = {
        **wanted,
        **({"per_class": keep} if small else {}),  # the full suite's manifest has no such key
        "datasets": [
            {
                "name": s.name,
                "folder": s.folder,
                "split_file": s.split_file,
                "num_classes": len(s.classnames),
                "template": s.template,
                "counts": counts[s.name],
            }
            for s in TOY_DATASETS
        ],
        "captions": {"path": captions.relative_to(root).as_posix(), "lines": lines},
        "seconds": round(time.perf_counter() - start, 2),
    }
    atomic_write_text(root / MANIFEST, json.dumps(manifest, indent=2))
    logger.info("Built the toy suite in %s (%.1f s).", root, manifest["seconds"])
    return root


def default_suite_root() -> Path:
    """``$ZSVL_HOME/toy-suite/v<GENERATOR_VERSION>``."""
    from zsvl.paths import zsvl_home

    return zsvl_home() / "toy-suite" / f"v{GENERATOR_VERSION}"
