"""Labelled support images from a folder: ``shots/<class>/*.jpg`` (torchvision's ImageFolder).

Every sub-folder of the support folder is a class, named after the folder; its images (any
image extension, searched recursively, hidden files left out) are that class's shots. With a
class list given, every sub-folder must name one of its classes (underscores and spaces match
each other: ``golden_retriever/`` is "golden retriever"); classes without a folder have no
shots (adapters then fall back to zero-shot for them, with a warning).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zsvl.classes import ClassSet, as_classset
from zsvl.errors import InvalidParameterError

__all__ = ["SupportSet", "load_support", "encode_support"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SupportSet:
    """Labelled shots read from an ImageFolder.

    root : the support folder. classes : the class order the labels index.
    paths : one image file per shot. labels : int64 (n_shots,), positions in ``classes``.
    """

    root: Path
    classes: ClassSet
    paths: list[Path]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.paths)

    def counts(self) -> np.ndarray:
        """Shots per class, int64 (n_classes,)."""
        return np.bincount(self.labels, minlength=len(self.classes))


def _key(name: str) -> str:
    return " ".join(name.replace("_", " ").split()).casefold()


def load_support(folder: str | Path, classes: ClassSet | Sequence[str] | None = None) -> SupportSet:
    """Read ``folder/<class>/<images>``; ``classes`` fixes the class order (default: the
    sub-folder names, sorted)."""
    from zsvl.data.inputs import IMAGE_EXTENSIONS, scan_folder

    root = Path(folder)
    if not root.is_dir():
        raise InvalidParameterError(
            f"Support folder {str(root)!r} does not exist or is not a folder. It must hold one "
            "sub-folder of images per class: shots/<class>/*.jpg."
        )
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not subdirs:
        raise InvalidParameterError(
            f"Support folder {root} has no class sub-folders. Put each class's images in a "
            "sub-folder named after the class: shots/<class>/*.jpg."
        )
    classset = ClassSet(tuple(d.name for d in subdirs)) if classes is None else as_classset(classes)
    lookup: dict[str, int] = {}
    for label, name in enumerate(classset.names):
        lookup.setdefault(_key(name), label)
        for alias in classset.aliases[label] if classset.aliases else ():
            lookup.setdefault(_key(alias), label)
    unknown = [d.name for d in subdirs if _key(d.name) not in lookup]
    if unknown:
        raise InvalidParameterError(
            f"Support folders {unknown[:5]} name no class of the class list "
            f"({', '.join(classset.names[:5])}{', ...' if len(classset) > 5 else ''}); rename "
            "them after the classes, or leave out --classes to use the folder names."
        )
    paths: list[Path] = []
    labels: list[int] = []
    empty = []
    for d in subdirs:
        files = scan_folder(d)
        if not files:
            empty.append(d.name)
        paths += files
        labels += [lookup[_key(d.name)]] * len(files)
    if empty:
        raise InvalidParameterError(
            f"Support class folders {empty[:5]} hold no images (looked recursively for "
            f"{', '.join(sorted(IMAGE_EXTENSIONS)[:6])}, ...). Add images or remove the folders."
        )
    support = SupportSet(root, classset, paths, np.asarray(labels, dtype=np.int64))
    missing = [n for n, k in zip(classset.names, support.counts(), strict=True) if k == 0]
    if missing:
        logger.warning(
            "%d classes have no support images (%s); they rely on zero-shot.",
            len(missing),
            ", ".join(missing[:5]),
        )
    return support


def encode_support(
    encoder: Any, support: SupportSet, *, n_views: int = 10, batch_size: int = 64
) -> Any:
    """Embeddings of the shots: ``n_views`` augmented views each (Tip-Adapter's random crops and
    flips) and the plain image, as :class:`zsvl.data.augment.ShotEmbeddings`."""
    from zsvl._progress import progress_bar, progress_line
    from zsvl.data.augment import AugmentConfig, ShotEmbeddings, encode_shots

    config = AugmentConfig(n_views=n_views) if n_views > 1 else None
    views, plain = [], []
    chunk = 32  # images per call: the bar moves, memory stays bounded
    with progress_bar(total=len(support), desc="support", unit="img") as bar:
        for start in range(0, len(support), chunk):
            paths = support.paths[start : start + chunk]
            if config is None:
                emb = np.asarray(
                    encoder.encode_images(paths, batch_size=batch_size).embeddings, np.float32
                )
                views.append(emb[:, None, :])
                plain.append(emb)
            else:
                part = encode_shots(encoder, paths, config=config, batch_size=batch_size)
                assert part.plain is not None  # encode_shots encodes the plain images by default
                views.append(part.views)
                plain.append(part.plain)
            bar.update(len(paths))
    shots = ShotEmbeddings(np.concatenate(views), np.concatenate(plain))
    progress_line(
        f"support: {len(support)} images of {len(support.classes)} classes encoded "
        f"({n_views} views each)"
    )
    return shots
