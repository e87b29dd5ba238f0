"""The synthetic world: attribute vocabularies, scenes and the toy class tables.

Everything here is data read from ``world.json`` beside this module: the shapes, colours, patterns,
sizes and backgrounds an object can have (with the words used to talk about them), and the class
tables of the toy datasets (class name -> attributes). A :class:`Scene` is one fully specified
image; :func:`sample_scene` draws one from a numpy generator, :func:`scene_rng` gives the generator
for ``(seed, index)`` so every image is a pure function of those numbers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

__all__ = [
    "ATTRIBUTES",
    "Scene",
    "ToyClass",
    "ToyDatasetSpec",
    "load_world",
    "vocabulary",
    "image_size",
    "scene_rng",
    "sample_scene",
    "dataset_classes",
    "dataset_nuisance",
    "dataset_style",
    "class_attributes",
    "class_traits",
]

ATTRIBUTES = ("shape", "colour", "pattern", "size", "background")
# name of each attribute's vocabulary section in world.json
_SECTION = {
    "shape": "shapes",
    "colour": "colours",
    "pattern": "patterns",
    "size": "sizes",
    "background": "backgrounds",
}
NOISY_ABOVE = 10.0  # pixel-noise std (0-255 scale) above which a background is called "noisy"


@dataclass(frozen=True)
class Scene:
    """One image, fully specified. Positions and lengths are fractions of the image side."""

    shape: str  # key of world.json "shapes"
    colour: str  # key of "colours"
    pattern: str  # key of "patterns"
    size: str  # key of "sizes"
    background: str  # key of "backgrounds"
    cx: float  # object centre, x
    cy: float  # object centre, y
    radius: float  # object radius
    angle: float  # rotation in degrees
    brightness: float  # multiplies the object colour
    tint: tuple[float, float, float]  # added to the object colour (0-255 scale)
    period: float  # pattern period
    phase: tuple[float, float]  # pattern offset, in periods
    noise: float  # std of the pixel noise (0-255 scale)
    noise_seed: int  # seed of the pixel noise and speckles
    gamma: float = 1.0  # tone curve 255 (v / 255) ** gamma of the image (a dataset's style)

    @property
    def noisy(self) -> bool:
        return self.noise > NOISY_ABOVE

    def attributes(self) -> dict[str, str]:
        """The discrete attributes, ``{"shape": ..., "colour": ..., ...}``."""
        return {name: getattr(self, name) for name in ATTRIBUTES}


@dataclass(frozen=True)
class ToyClass:
    """One class of a toy dataset: its name and the attributes every image of it has."""

    name: str  # the class name, as written in classnames.txt
    attributes: Mapping[str, str]  # attribute -> value, e.g. {"shape": "star"}


@dataclass(frozen=True)
class ToyDatasetSpec:
    """A toy dataset written by :func:`zsvl.toy.suite.build_suite` in the CoOp layout."""

    name: str  # dataset name, e.g. "ToyFine"
    folder: str  # folder under the suite root
    split_file: str  # split JSON inside the folder, "split_zsvl_<name>.json"
    classnames: tuple[str, ...]  # class names in label order
    template: str  # CoOp-style prompt template with one "{}"


@lru_cache(maxsize=1)
def load_world() -> dict[str, Any]:
    """The parsed ``world.json`` (cached; treat as read-only)."""
    text = resources.files("zsvl.toy").joinpath("world.json").read_text(encoding="utf-8")
    return json.loads(text)


def vocabulary(attribute: str) -> dict[str, dict[str, Any]]:
    """The values of one attribute (``"shape"``, ``"colour"``, ...) and their word lists."""
    if attribute not in _SECTION:
        raise ValueError(f"Unknown toy attribute {attribute!r}; expected one of {ATTRIBUTES}.")
    return load_world()[_SECTION[attribute]]


def image_size() -> int:
    """Side of every rendered image, in pixels."""
    return int(load_world()["image_size"])


def scene_rng(seed: int, index: int, stream: int = 0) -> np.random.Generator:
    """The generator of image ``index`` in stream ``stream`` of ``seed`` (all ints >= 0)."""
    return np.random.default_rng([int(seed), int(stream), int(index)])


def sample_scene(rng: np.random.Generator, **fixed: str | Sequence[str]) -> Scene:
    """Draw a scene; each attribute is drawn uniformly unless ``fixed`` gives it.

    A fixed value may be one value (``shape="star"``) or a sequence to draw from
    (``size=("medium", "large")``). The continuous nuisances (position, rotation, colour jitter,
    pattern phase, noise) are always drawn.
    """
    unknown = set(fixed) - set(ATTRIBUTES)
    if unknown:
        raise ValueError(f"Unknown toy attribute(s) {sorted(unknown)}; expected {ATTRIBUTES}.")
    chosen: dict[str, str] = {}
    for name in ATTRIBUTES:
        values = list(vocabulary(name))
        want = fixed.get(name)
        options = values if want is None else [want] if isinstance(want, str) else list(want)
        bad = [v for v in options if v not in values]
        if bad:
            raise ValueError(f"Unknown {name} {bad[0]!r}; expected one of {values}.")
        chosen[name] = options[int(rng.integers(len(options)))]
    lo, hi = vocabulary("size")[chosen["size"]]["radius"]
    radius = float(rng.uniform(lo, hi))
    margin = radius + 0.04
    noisy = rng.random() < 0.3
    return Scene(
        shape=chosen["shape"],
        colour=chosen["colour"],
        pattern=chosen["pattern"],
        size=chosen["size"],
        background=chosen["background"],
        cx=float(rng.uniform(margin, 1 - margin)),
        cy=float(rng.uniform(margin, 1 - margin)),
        radius=radius,
        angle=float(rng.uniform(-15.0, 15.0)),
        brightness=float(rng.uniform(0.8, 1.1)),
        tint=_triple(rng.normal(0.0, 10.0, size=3)),
        period=float(rng.uniform(0.11, 0.14)),
        phase=(float(rng.random()), float(rng.random())),
        noise=float(rng.uniform(14.0, 24.0) if noisy else rng.uniform(0.0, 5.0)),
        noise_seed=int(rng.integers(2**31)),
    )


def _triple(values: np.ndarray) -> tuple[float, float, float]:
    """A length-3 array as a tuple of three Python floats."""
    first, second, third = (float(v) for v in values)
    return first, second, third


def _dataset_entry(dataset: str) -> dict[str, Any]:
    entries = {d["name"]: d for d in load_world()["datasets"]}
    if dataset not in entries:
        raise ValueError(f"Unknown toy dataset {dataset!r}; expected one of {sorted(entries)}.")
    return entries[dataset]


def dataset_classes(dataset: str) -> tuple[ToyClass, ...]:
    """The classes of a toy dataset in label order."""
    return tuple(
        ToyClass(c["name"], dict(c["attributes"])) for c in _dataset_entry(dataset)["classes"]
    )


def dataset_nuisance(dataset: str) -> dict[str, list[str]]:
    """Restrictions on the attributes a dataset's classes leave free, e.g. ``{"size": [...]}``."""
    return {k: list(v) for k, v in _dataset_entry(dataset)["nuisance"].items()}


def dataset_style(dataset: str) -> dict[str, float]:
    """How a dataset's photos differ from the training pool's, e.g. ``{"gamma": 2.2}``.

    The tiny CLIP never sees a styled image. ToyFine's camera has another tone curve (every
    value v becomes 255 (v / 255) ** 2.2 before the sensor noise: darker, more contrasty
    colours, as from a linear-light pipeline): like a real fine-grained set it lies off the
    pretraining distribution, which is what the few-shot adapters of zsvl.methods correct.
    """
    return {k: float(v) for k, v in _dataset_entry(dataset).get("style", {}).items()}


def class_attributes(dataset: str) -> dict[str, dict[str, str]]:
    """The per-class attribute table: class name -> {attribute: value}."""
    return {c.name: dict(c.attributes) for c in dataset_classes(dataset)}


def class_traits(dataset: str, classname: str) -> list[str]:
    """What a class looks like, as short phrases ("three corners", "red in colour", ...).

    This is the ground truth a fake LLM can answer "what does a X look like?" with.
    """
    table = class_attributes(dataset)
    if classname not in table:
        raise ValueError(f"Unknown class {classname!r} of toy dataset {dataset!r}.")
    traits: list[str] = []
    for attribute, value in table[classname].items():
        traits.extend(vocabulary(attribute)[value].get("traits", []))
    return traits
