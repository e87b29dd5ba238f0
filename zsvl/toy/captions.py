"""Captions of toy scenes: paraphrased attribute phrases and class-name style captions.

The captions train the tiny CLIP and form the toy caption corpus. Most mention two to four
attributes of the scene in varied wording ("a red shape with three corners", "a triangle that is
red", "a photo of a small green star on a grey background"); some are written the way the toy
datasets name their classes ("a photo of a red striped triangle.", "a photo of a dotted
texture.") so that zero-shot classification from class names works.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from zsvl._atomic import atomic_path
from zsvl.toy.world import ATTRIBUTES, Scene, sample_scene, vocabulary

__all__ = [
    "caption_scene",
    "name_caption",
    "training_caption",
    "caption_corpus",
    "write_caption_corpus",
]

CAPTION_STREAM = 7  # random stream of the caption corpus scenes (cf. world.scene_rng)
_FRAMES = (
    "a photo of {}.",
    "a photo of {}.",
    "{}.",
    "an image of {}.",
    "a picture of {}.",
    "there is {}.",
    "a drawing of {}.",
    "a close-up photo of {}.",
)
_GENERIC = ("shape", "object", "figure")
# how many attributes a caption mentions, and how likely each is to be picked
_COUNT_CDF = np.cumsum([0.08, 0.32, 0.36, 0.18, 0.06])[:-1]
_ATTR_WEIGHT = np.array([1.3, 1.0, 1.0, 0.35, 0.35])  # shape, colour, pattern, size, background


def _pick(rng: np.random.Generator, options: Sequence[str], first: float = 0.6) -> str:
    """The first option with probability ``first``, otherwise a uniform draw of the rest."""
    if len(options) == 1 or rng.random() < first:
        return options[0]
    return options[1 + int(rng.integers(len(options) - 1))]


def _article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _background(scene: Scene, rng: np.random.Generator) -> str:
    word = _pick(rng, vocabulary("background")[scene.background]["adjs"], 0.75)
    if scene.noisy and rng.random() < 0.7:
        word = "noisy " + word
    prep = "on" if rng.random() < 0.7 else "against"
    return f"{prep} {_article(word)} background"


def _noun_phrase(scene: Scene, chosen: set[str], rng: np.random.Generator) -> str:
    """A noun phrase with its article that mentions the ``chosen`` attributes of ``scene``."""
    tails: list[str] = []
    if "shape" in chosen:
        entry = vocabulary("shape")[scene.shape]
        if rng.random() < 0.75:
            head = _pick(rng, entry["nouns"], 0.75)
        else:
            head = _GENERIC[int(rng.integers(len(_GENERIC)))]
            tails.append(_pick(rng, entry["tails"], 0.5))
    else:
        head = _GENERIC[int(rng.integers(len(_GENERIC)))]
    adjs: list[str] = []
    pattern_adjs: list[str] = []
    if "pattern" in chosen:
        entry = vocabulary("pattern")[scene.pattern]
        if not tails and rng.random() < 0.3:
            tails.append(_pick(rng, entry["tails"], 0.5))
        else:
            pattern_adjs.append(_pick(rng, entry["adjs"], 0.75))
            adjs.extend(pattern_adjs)
    if "colour" in chosen:
        colour = _pick(rng, vocabulary("colour")[scene.colour]["adjs"], 0.8)
        adjs.insert(0 if rng.random() < 0.75 else len(adjs), colour)
    if "size" in chosen:
        adjs.insert(0, _pick(rng, vocabulary("size")[scene.size]["adjs"], 0.7))
    movable = [a for a in adjs if a not in pattern_adjs]
    if movable and rng.random() < 0.2:  # "a triangle that is red"
        clause = movable[int(rng.integers(len(movable)))]
        adjs.remove(clause)
        tails.append(f"that is {clause}")
    if "background" in chosen:
        tails.append(_background(scene, rng))
    return _article(" ".join([*adjs, head, *tails]))


def caption_scene(
    scene: Scene, rng: np.random.Generator, *, attributes: Sequence[str] | None = None
) -> str:
    """One caption of ``scene``. It mentions ``attributes`` (default: a random subset)."""
    if attributes is None:
        count = 1 + int(np.searchsorted(_COUNT_CDF, rng.random()))
        keys = rng.random(len(ATTRIBUTES)) ** (1.0 / _ATTR_WEIGHT)  # weighted draw w/o replacement
        chosen = {ATTRIBUTES[i] for i in np.argsort(-keys)[:count]}
    else:
        chosen = set(attributes)
        unknown = chosen - set(ATTRIBUTES)
        if unknown:
            raise ValueError(f"Unknown attribute(s) {sorted(unknown)}; expected {ATTRIBUTES}.")
    if chosen <= {"pattern", "colour"} and "pattern" in chosen and rng.random() < 0.5:
        return name_caption(scene, "texture", rng, with_colour="colour" in chosen)
    phrase = _noun_phrase(scene, chosen, rng)
    return _FRAMES[int(rng.integers(len(_FRAMES)))].format(phrase)


def name_caption(
    scene: Scene, kind: str, rng: np.random.Generator | None = None, *, with_colour: bool = False
) -> str:
    """A caption written the way a toy dataset names its classes.

    kind : "coarse" ("a photo of a star."), "fine" ("a photo of a red striped star.") or
        "texture" ("a photo of a striped texture.").
    """
    pattern = vocabulary("pattern")[scene.pattern]["adjs"][0]
    if kind == "coarse":
        name = scene.shape
    elif kind == "fine":
        name = f"{scene.colour} {pattern} {scene.shape}"
    elif kind == "texture":
        texture = "pattern" if rng is not None and rng.random() < 0.3 else "texture"
        name = f"{scene.colour} {pattern} {texture}" if with_colour else f"{pattern} {texture}"
    else:
        raise ValueError(f"Unknown caption kind {kind!r}; expected 'coarse', 'fine' or 'texture'.")
    return f"a photo of {_article(name)}."


def training_caption(scene: Scene, rng: np.random.Generator, name_p: float = 0.25) -> str:
    """The caption distribution the tiny CLIP is trained on: class-name style with ``name_p``."""
    if rng.random() < name_p:
        kind = ("coarse", "fine", "fine", "texture")[int(rng.integers(4))]
        return name_caption(scene, kind, rng)
    return caption_scene(scene, rng)


def caption_corpus(n: int, seed: int = 0) -> Iterator[str]:
    """``n`` captions of fresh random scenes (the toy caption corpus), deterministic in ``seed``.

    The scenes come from their own stream, so no caption describes a toy suite image.
    """
    rng = np.random.default_rng([int(seed), CAPTION_STREAM])
    for _ in range(n):
        yield training_caption(sample_scene(rng), rng)


def write_caption_corpus(path: Path | str, n: int = 50_000, seed: int = 0) -> Path:
    """Write ``n`` captions to ``path``, one per line (atomically); returns the path."""
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as f:
        f.writelines(caption + "\n" for caption in caption_corpus(n, seed))
    return Path(path)
