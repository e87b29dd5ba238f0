"""Saved classifiers: round trips of every method, and refusals of damaged or mismatched files."""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from caption_fakes import COLOURS, SHAPES, HashEncoder, toy_captions, write_lines  # noqa: E402

import zsvl  # noqa: E402
from zsvl.errors import ClassifierFileError, EncoderMismatchError  # noqa: E402
from zsvl.text.descriptors import load_descriptors  # noqa: E402


@pytest.fixture(scope="module")
def shapes() -> list[str]:
    return list(load_descriptors("toy_shapes_cbd").classes.names)


@pytest.fixture(scope="module")
def data(toy_encoder, shapes):
    """Unit embeddings near the class texts: shots (n, views, D) with labels, and queries."""
    rng = np.random.default_rng(0)
    T = toy_encoder.encode_texts([f"a photo of a {c}." for c in shapes])

    def near(labels, noise=0.6):
        x = T[labels] + noise * rng.standard_normal((len(labels), T.shape[1])).astype(
            np.float32
        ) / np.sqrt(T.shape[1])
        return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)

    y = np.repeat(np.arange(len(shapes)), 4)
    views = np.stack([near(y) for _ in range(3)], axis=1)  # (40, 3, D)
    queries = near(rng.integers(len(shapes), size=30))
    return views, y, queries


def _zero_shot(enc, classes):
    return zsvl.ZeroShotClassifier(enc, classes, templates="single").fit()


def _build(name, enc, classes, views, y, queries):
    from zsvl.methods.tip import TipXAdapter

    if name == "zeroshot":
        return _zero_shot(enc, classes)
    if name == "cbd":
        return zsvl.DescriptorClassifier(enc, "toy_shapes_cbd", classes).fit()
    if name == "cupl":
        return zsvl.DescriptorClassifier(
            enc, "toy_shapes_cupl", classes, aggregation="mean_emb"
        ).fit()
    if name == "max":
        return zsvl.DescriptorClassifier(enc, "toy_shapes_cbd", classes, aggregation="max").fit()
    if name == "waffle":
        return zsvl.WaffleCLIPClassifier(enc, classes, match="toy_shapes_cbd", seeds=(0, 1)).fit()
    if name == "fudd":
        return zsvl.FuDDClassifier(enc, classes, descriptors="toy_shapes_fudd", k=4).fit()
    if name == "fudd-nonadaptive":
        return zsvl.FuDDClassifier(
            enc, classes, descriptors="toy_shapes_fudd", k=4, adaptive=False
        ).fit()
    if name == "gda":
        return zsvl.GDAAdapter(_zero_shot(enc, classes), alpha=0.5).fit(views, y)
    if name == "gda-lw":
        return zsvl.GDAAdapter(
            _zero_shot(enc, classes), shrinkage="ledoit_wolf", priors="counts"
        ).fit(views, y)
    if name == "gda-em":
        return zsvl.GDAEMAdapter(_zero_shot(enc, classes), max_iter=3).fit(queries)
    if name == "tip":
        return zsvl.TipAdapter(_zero_shot(enc, classes), alpha=2.0, beta=3.0).fit(views, y)
    if name == "tip-x":
        return TipXAdapter(_zero_shot(enc, classes), alpha=1.0, beta=5.0).fit(views[:-3], y[:-3])
    raise AssertionError(name)


METHODS = [
    "zeroshot",
    "cbd",
    "cupl",
    "max",
    "waffle",
    "fudd",
    "fudd-nonadaptive",
    "gda",
    "gda-lw",
    "gda-em",
    "tip",
    "tip-x",
]


@pytest.mark.parametrize("name", METHODS)
def test_round_trip_gives_the_same_scores(name, toy_encoder, shapes, data, tmp_path):
    views, y, queries = data
    clf = _build(name, toy_encoder, shapes, views, y, queries)
    before = clf.decision_function(queries)
    path = zsvl.save_classifier(clf, tmp_path / "clf.zsvl")
    loaded = zsvl.load_classifier(path, toy_encoder)
    assert type(loaded) is type(clf)
    assert list(loaded.classes_) == list(clf.classes_) == shapes
    after = loaded.decision_function(queries)
    np.testing.assert_allclose(after, before, rtol=1e-6, atol=1e-6)
    assert (np.asarray(loaded.predict(queries)) == np.asarray(clf.predict(queries))).all()
    # a second save of the loaded classifier round-trips too
    again = zsvl.load_classifier(zsvl.save_classifier(loaded, tmp_path / "b.zsvl"), toy_encoder)
    np.testing.assert_allclose(again.decision_function(queries), before, rtol=1e-6, atol=1e-6)
    # the file is an npz-readable zip with no pickled object in it
    with np.load(path, allow_pickle=False) as npz:
        for key in npz.files:
            if key.startswith("arrays/"):
                assert npz[key].dtype != object


def test_params_survive(toy_encoder, shapes, data, tmp_path):
    views, y, queries = data
    clf = _build("tip", toy_encoder, shapes, views, y, queries)
    loaded = zsvl.load_classifier(zsvl.save_classifier(clf, tmp_path / "t.zsvl"), toy_encoder)
    assert (loaded.alpha, loaded.beta, loaded.gamma) == (2.0, 3.0, 0.0)
    assert loaded.zero_shot.templates_ == clf.zero_shot.templates_
    assert loaded.zero_shot.encoder is toy_encoder
    manifest = json.loads(zipfile.ZipFile(tmp_path / "t.zsvl").read("manifest.json"))
    assert manifest["format"] == "zsvl-classifier" and manifest["format_version"] == 1
    assert manifest["encoder"]["fingerprint"] == toy_encoder.fingerprint
    assert manifest["encoder"]["model"] == "toy"
    assert manifest["classes"]["names"] == shapes
    assert manifest["estimator"]["class"] == "zsvl.methods.tip:TipAdapter"


def test_load_without_encoder_reloads_the_saved_model(toy_encoder, shapes, tmp_path):
    clf = _zero_shot(toy_encoder, shapes)
    path = zsvl.save_classifier(clf, tmp_path / "z.zsvl")
    loaded = zsvl.load_classifier(path)
    assert loaded.encoder.fingerprint == toy_encoder.fingerprint
    np.testing.assert_allclose(loaded.weights_, clf.weights_)


def test_caption_support_round_trip(tmp_path):
    enc = HashEncoder(48)
    index = zsvl.build_index(
        write_lines(tmp_path / "c.txt", toy_captions(1500, seed=5)),
        enc,
        tmp_path / "ix",
        tune_queries=50,
    )
    classes = [f"{c} {s}" for c in COLOURS[:3] for s in SHAPES[:3]]
    rng = np.random.default_rng(1)
    X = rng.standard_normal((20, 48)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    clf = zsvl.CaptionSupportAdapter(
        enc, classes, index=index, templates=["a photo of a {}."], m=8, gamma=0.5
    ).fit()
    loaded = zsvl.load_classifier(zsvl.save_classifier(clf, tmp_path / "cs.zsvl"), enc)
    np.testing.assert_allclose(loaded.decision_function(X), clf.decision_function(X), atol=1e-6)
    assert loaded.index is None  # the index is not stored: only fit() needs it


def test_vocabulary_free_is_refused(toy_encoder, tmp_path):
    clf = zsvl.VocabularyFreeClassifier(toy_encoder, index=object())
    clf.classes_ = zsvl.ClassSet(("a",))  # as if fitted
    with pytest.raises(ClassifierFileError, match="caption index"):
        zsvl.save_classifier(clf, tmp_path / "v.zsvl")
    assert not (tmp_path / "v.zsvl").exists()


def test_unfitted_is_refused(toy_encoder, shapes, tmp_path):
    with pytest.raises(ClassifierFileError, match="not fitted"):
        zsvl.save_classifier(zsvl.ZeroShotClassifier(toy_encoder, shapes), tmp_path / "u.zsvl")


@pytest.fixture()
def saved(toy_encoder, shapes, data, tmp_path) -> Path:
    views, y, queries = data
    return zsvl.save_classifier(
        _build("tip", toy_encoder, shapes, views, y, queries), tmp_path / "s.zsvl"
    )


def test_another_encoder_is_refused(saved):
    other = HashEncoder(512)
    with pytest.raises(EncoderMismatchError, match="fitted with the encoder"):
        zsvl.load_classifier(saved, other)


def _rewrite(path: Path, change) -> None:  # noqa: ANN001
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    change(members)
    with zipfile.ZipFile(path, "w") as zf:
        for name, raw in members.items():
            zf.writestr(name, raw)


def test_unknown_version_is_refused(saved, toy_encoder):
    def bump(m):
        manifest = json.loads(m["manifest.json"])
        manifest["format_version"] = 99
        m["manifest.json"] = json.dumps(manifest).encode()

    _rewrite(saved, bump)
    with pytest.raises(ClassifierFileError, match="format version 99"):
        zsvl.load_classifier(saved, toy_encoder)


def test_foreign_class_is_refused(saved, toy_encoder):
    def swap(m):
        m["manifest.json"] = m["manifest.json"].replace(
            b"zsvl.methods.tip:TipAdapter", b"os:system"
        )

    _rewrite(saved, swap)
    with pytest.raises(ClassifierFileError, match="only zsvl classes"):
        zsvl.load_classifier(saved, toy_encoder)


def test_damaged_files_are_refused(saved, toy_encoder, tmp_path):
    raw = saved.read_bytes()
    cut = tmp_path / "cut.zsvl"
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ClassifierFileError, match="damaged|not a zsvl"):
        zsvl.load_classifier(cut, toy_encoder)
    # flip bytes inside the first array member: the zip's CRC catches it
    with zipfile.ZipFile(saved) as zf:
        info = zf.getinfo("arrays/a0.npy")
    flipped = bytearray(raw)
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 40
    for i in range(start, start + 8):
        flipped[i] ^= 0xFF
    bad = tmp_path / "flip.zsvl"
    bad.write_bytes(bytes(flipped))
    with pytest.raises(ClassifierFileError, match="damaged"):
        zsvl.load_classifier(bad, toy_encoder)
    missing = tmp_path / "nope.zsvl"
    with pytest.raises(ClassifierFileError, match="does not exist"):
        zsvl.load_classifier(missing, toy_encoder)
    text = tmp_path / "text.zsvl"
    text.write_text("hello")
    with pytest.raises(ClassifierFileError, match="not a zsvl classifier file"):
        zsvl.load_classifier(text, toy_encoder)


def test_missing_array_is_refused(saved, toy_encoder):
    _rewrite(saved, lambda m: m.pop("arrays/a0.npy"))
    with pytest.raises(ClassifierFileError, match="a0"):
        zsvl.load_classifier(saved, toy_encoder)
