"""The synthetic world: deterministic rendering, class tables, captions."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from zsvl.toy.captions import caption_corpus, caption_scene, name_caption
from zsvl.toy.render import render_image, render_scene
from zsvl.toy.world import (
    ATTRIBUTES,
    class_attributes,
    class_traits,
    dataset_classes,
    image_size,
    sample_scene,
    scene_rng,
    vocabulary,
)


def test_render_is_a_pure_function_of_seed_and_index():
    a, scene_a = render_image(3, 17)
    b, scene_b = render_image(3, 17)
    assert scene_a == scene_b
    np.testing.assert_array_equal(a, b)
    assert a.shape == (image_size(), image_size(), 3) and a.dtype == np.uint8
    c, _ = render_image(3, 18)
    d, _ = render_image(4, 17)
    assert not np.array_equal(a, c) and not np.array_equal(a, d)


def test_every_shape_and_pattern_renders_visibly():
    for shape, pattern in itertools.product(vocabulary("shape"), vocabulary("pattern")):
        img, scene = render_image(0, 0, shape=shape, pattern=pattern, size="large")
        assert (scene.shape, scene.pattern) == (shape, pattern)
        bg = np.asarray(vocabulary("background")[scene.background]["rgb"])
        differs = np.abs(img.astype(int) - bg).sum(axis=-1) > 60
        assert differs.mean() > 0.05, (shape, pattern)  # the object covers part of the image


def test_shapes_differ_from_each_other():
    fixed = {"colour": "red", "pattern": "solid", "size": "large", "background": "black"}
    base = sample_scene(scene_rng(0, 5), **fixed)
    images = {}
    for shape in vocabulary("shape"):
        scene = dataclasses.replace(base, shape=shape, noise=0.0, angle=0.0)
        images[shape] = render_scene(scene).astype(int)
    for s, t in itertools.combinations(images, 2):
        assert np.abs(images[s] - images[t]).sum() > 2000, (s, t)


def test_sample_scene_rejects_unknown_values():
    with pytest.raises(ValueError, match="Unknown shape 'blob'"):
        sample_scene(scene_rng(0, 0), shape="blob")
    with pytest.raises(ValueError, match="Unknown toy attribute"):
        sample_scene(scene_rng(0, 0), texture="silk")


def test_fine_grained_classes_are_unique_and_one_attribute_from_a_neighbour():
    classes = dataset_classes("ToyFine")
    assert len(classes) >= 40
    assert len({c.name for c in classes}) == len(classes)
    tuples = [tuple(sorted(c.attributes.items())) for c in classes]
    assert len(set(tuples)) == len(tuples)
    for c in classes:
        neighbours = [
            o for o in classes if sum(c.attributes[k] != o.attributes[k] for k in c.attributes) == 1
        ]
        assert neighbours, c.name


@pytest.mark.parametrize("dataset", ["ToyShapes", "ToyFine", "ToyTextures"])
def test_class_tables_use_known_attribute_values(dataset):
    for name, attrs in class_attributes(dataset).items():
        assert attrs and set(attrs) <= set(ATTRIBUTES)
        for attribute, value in attrs.items():
            assert value in vocabulary(attribute), (name, attribute, value)
        assert class_traits(dataset, name)  # something to answer "what does it look like?"


def test_class_traits_describe_the_attributes():
    traits = class_traits("ToyFine", "red striped triangle")
    assert "three corners" in traits and "red in colour" in traits and "parallel stripes" in traits
    with pytest.raises(ValueError, match="Unknown class"):
        class_traits("ToyFine", "blue banana")


def _mentions(caption: str, attribute: str, value: str) -> bool:
    entry = vocabulary(attribute)[value]
    words = [*entry.get("nouns", []), *entry.get("tails", []), *entry.get("adjs", [])]
    return any(w in caption for w in words)


def test_captions_mention_the_attributes_of_their_scene():
    for index in range(200):
        rng = scene_rng(1, index, 9)
        scene = sample_scene(rng)
        caption = caption_scene(scene, rng, attributes=ATTRIBUTES)
        for attribute in ATTRIBUTES:
            assert _mentions(caption, attribute, getattr(scene, attribute)), (attribute, caption)
        chosen = ("shape", "colour")
        caption = caption_scene(scene, rng, attributes=chosen)
        assert all(_mentions(caption, a, getattr(scene, a)) for a in chosen), caption


def test_name_captions_use_the_dataset_class_names():
    scene = sample_scene(scene_rng(0, 1), shape="triangle", colour="red", pattern="striped")
    assert name_caption(scene, "coarse") == "a photo of a triangle."
    assert name_caption(scene, "fine") == "a photo of a red striped triangle."
    assert name_caption(scene, "texture") == "a photo of a striped texture."
    with pytest.raises(ValueError, match="Unknown caption kind"):
        name_caption(scene, "medium")


def test_caption_corpus_is_deterministic_and_varied():
    a = list(caption_corpus(500, seed=2))
    assert a == list(caption_corpus(500, seed=2))
    assert len(set(a)) > 300
    assert any("red" in c for c in a) and any("texture" in c for c in a)
