"""K-shot sampling, the manifest, and augmented views encoded once through the cache."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from zsvl.classes import ClassSet
from zsvl.data.augment import AugmentConfig, augmented_views, encode_shots
from zsvl.data.fewshot import load_manifest, sample_few_shot, save_manifest
from zsvl.data.splits import Split
from zsvl.errors import InvalidParameterError
from zsvl.models.base import EncodedImages


def make_splits(root: Path, counts=(20, 20, 3), val_counts=(6, 6, 6)) -> dict[str, Split]:
    classes = ClassSet(tuple(f"class {i}" for i in range(len(counts))))

    def split(name, per_class):
        paths, labels = [], []
        for c, n in enumerate(per_class):
            for j in range(n):
                paths.append(root / name / f"c{c}" / f"{j:03d}.png")
                labels.append(c)
        return Split(name, paths, labels, classes)

    return {
        "train": split("train", counts),
        "val": split("val", val_counts),
        "test": split("test", (0, 0, 0)),
    }


def test_k_shots_per_class_seeded_and_independent_per_class(tmp_path):
    splits = make_splits(tmp_path)
    a = sample_few_shot(splits, 4, seed=1)
    assert np.bincount(a.train_labels).tolist() == [4, 4, 3]  # class 2 has only 3
    assert np.bincount(a.val_labels).tolist() == [4, 4, 4]  # min(K, 4)
    assert a == sample_few_shot(splits, 4, seed=1)  # same seed, same shots
    b = sample_few_shot(splits, 4, seed=2)
    assert a.train_paths != b.train_paths
    for path, label in zip(a.train_paths, a.train_labels, strict=True):
        assert path.parent.name == f"c{label}" and path.parent.parent.name == "train"
    # class 0's draw does not depend on the other classes
    fewer = make_splits(tmp_path, counts=(20, 5, 3))
    c0 = [p for p, lab in zip(a.train_paths, a.train_labels, strict=True) if lab == 0]
    got = sample_few_shot(fewer, 4, seed=1)
    assert c0 == [p for p, lab in zip(got.train_paths, got.train_labels, strict=True) if lab == 0]
    assert sample_few_shot(splits, 1, seed=1).val_shots == 1
    assert len(sample_few_shot(splits, 16, seed=1).val_labels) == 12


def test_classes_with_too_few_images_take_all_and_say_so(tmp_path, caplog):
    splits = make_splits(tmp_path)
    with caplog.at_level(logging.WARNING, logger="zsvl.data.fewshot"):
        fs = sample_few_shot(splits, 8, seed=3, dataset="Tiny")
    assert np.bincount(fs.train_labels).tolist() == [8, 8, 3]
    [short] = fs.shortfalls
    assert (short.split, short.label, short.wanted, short.available) == ("train", 2, 8, 3)
    assert "class 2 ('class 2') has 3 train images, fewer than the 8" in caplog.text
    manifest = fs.to_dict()
    assert manifest["shortfalls"] == [
        {"split": "train", "label": 2, "class": "class 2", "wanted": 8, "available": 3}
    ]


def test_manifest_round_trip_and_relocation(tmp_path):
    splits = make_splits(tmp_path / "data")
    fs = sample_few_shot(splits, 2, seed=1, dataset="Tiny", root=tmp_path / "data")
    path = save_manifest(fs, tmp_path / "manifests" / "tiny_k2_s1.json")
    raw = json.loads(path.read_text())
    assert raw["format"] == "zsvl-fewshot/1" and raw["shots"] == 2 and raw["seed"] == 1
    assert raw["train"][0][0].startswith("train/c0/")  # relative to the root, citable
    assert load_manifest(path) == fs
    moved = load_manifest(path, root=tmp_path / "elsewhere")
    assert moved.train_paths[0] == tmp_path / "elsewhere" / raw["train"][0][0]
    assert moved.train_labels == fs.train_labels
    (tmp_path / "bad.json").write_text('{"format": "other"}')
    with pytest.raises(InvalidParameterError, match="not a zsvl few-shot manifest"):
        load_manifest(tmp_path / "bad.json")


def test_sampling_errors_and_missing_val(tmp_path):
    splits = make_splits(tmp_path)
    with pytest.raises(InvalidParameterError, match="shots must be an int >= 1"):
        sample_few_shot(splits, 0, seed=1)
    with pytest.raises(InvalidParameterError, match="seed must be an int"):
        sample_few_shot(splits, 1, seed=-1)
    no_val = sample_few_shot({"train": splits["train"]}, 2, seed=1)
    assert no_val.val_paths == [] and no_val.val_labels == []


def write_images(folder: Path, n: int) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = folder / f"img{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def test_views_are_random_deterministic_and_keyed_by_content(tmp_path):
    [path] = write_images(tmp_path, 1)
    config = AugmentConfig(n_views=6, seed=0)
    views = augmented_views(path, config, size=32)
    assert len(views) == 6 and all(v.shape == (32, 32, 3) and v.dtype == np.uint8 for v in views)
    assert len({v.tobytes() for v in views}) == 6  # every view differs
    again = augmented_views(Image.open(path), config, size=32)  # same pixels, other container
    assert all(np.array_equal(a, b) for a, b in zip(views, again, strict=True))
    other_seed = augmented_views(path, AugmentConfig(n_views=6, seed=1), size=32)
    assert not np.array_equal(views[0], other_seed[0])
    with pytest.raises(InvalidParameterError, match="deterministic"):
        AugmentConfig(scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=0.0)


class CountingEncoder:
    """Embeds an image as its normalised mean colour per quadrant (12-d); counts inputs."""

    embed_dim, logit_scale, fingerprint, device = 12, 100.0, "quadrants|v1", "cpu"

    def __init__(self) -> None:
        self.images_seen = 0

    def encode_texts(self, texts, *, batch_size=256):
        return np.ones((len(texts), 12), np.float32) / np.sqrt(12)

    def encode_images(self, images, *, batch_size=64, on_error="raise"):
        from zsvl.data.images import describe, expand_inputs, load_image

        items = expand_inputs(images)
        self.images_seen += len(items)
        rows = []
        for item in items:
            a = np.asarray(load_image(item), dtype=np.float32)
            h, w = a.shape[0] // 2, a.shape[1] // 2
            quads = [a[:h, :w], a[:h, w:], a[h:, :w], a[h:, w:]]
            v = np.concatenate([q.mean((0, 1)) for q in quads]) + 1.0
            rows.append(v / np.linalg.norm(v))
        emb = np.array(rows, np.float32).reshape(len(items), 12)
        return EncodedImages(
            emb, np.arange(len(items)), [describe(x, i) for i, x in enumerate(items)]
        )


def test_encode_shots_once_through_the_cache(tmp_path, monkeypatch):
    from zsvl.embed.cached import CachedEncoder
    from zsvl.embed.store import EmbeddingStore

    monkeypatch.delenv("ZSVL_NO_CACHE", raising=False)
    paths = write_images(tmp_path / "imgs", 3)
    inner = CountingEncoder()
    store = EmbeddingStore(inner.fingerprint, dim=12, root=tmp_path / "store")
    encoder = CachedEncoder(inner, store)
    config = AugmentConfig(n_views=4)
    shots = encode_shots(encoder, paths, config=config, size=24, images_per_call=2)
    assert shots.views.shape == (3, 4, 12) and shots.plain.shape == (3, 12)
    assert inner.images_seen == 3 * 4 + 3
    np.testing.assert_allclose(np.linalg.norm(shots.mean_views(), axis=1), 1.0, rtol=1e-6)
    again = encode_shots(encoder, paths, config=config, size=24)  # every view from the cache
    assert inner.images_seen == 15 and encoder.stats.hits >= 15
    np.testing.assert_array_equal(again.views, shots.views)
    assert not np.allclose(shots.views[:, 0], shots.views[:, 1])  # views really differ
    assert shots.subset(np.array([2])).views.shape == (1, 4, 12)
