"""Saved classifiers (``zsvl serve --classifier clf.zsvl``) answer /classify like the library."""

from __future__ import annotations

import io

import numpy as np
import pytest

from .helpers import toy_png


@pytest.fixture(scope="module")
def saved(tmp_path_factory, toy_encoder):
    """A zero-shot and a descriptor classifier, fitted with the toy model and saved."""
    from zsvl.methods.descriptors import DescriptorClassifier
    from zsvl.methods.zeroshot import ZeroShotClassifier
    from zsvl.persist import save_classifier
    from zsvl.text.descriptors import packaged_descriptors

    root = tmp_path_factory.mktemp("clf")
    zs = ZeroShotClassifier(
        toy_encoder, ["red", "green", "blue", "yellow"], templates="a photo of a {} shape."
    ).fit()
    cbd = DescriptorClassifier(toy_encoder, packaged_descriptors("toy_shapes_cbd")).fit()
    return {
        "colours": save_classifier(zs, root / "colours.zsvl", model="toy"),
        "shapes": save_classifier(cbd, root / "shapes.zsvl", model="toy"),
    }


@pytest.fixture
def clf_client(saved, toy_encoder, toy_index_dir):
    from fastapi.testclient import TestClient

    from zsvl.serve import build_service, create_app

    svc = build_service(
        indexes=[str(toy_index_dir)],
        encoder=toy_encoder,
        model="toy",
        classifiers=[str(saved["colours"]), f"shapes={saved['shapes']}"],
    )
    with TestClient(create_app(svc)) as c:
        yield c
    svc.close()


def _X(encoder, data):
    from PIL import Image

    arrays = [np.asarray(Image.open(io.BytesIO(d)).convert("RGB")) for d in data]
    return encoder.encode_images(arrays).embeddings


def test_saved_classifiers_are_listed(clf_client) -> None:
    listed = {c["name"]: c for c in clf_client.get("/indexes").json()["classifiers"]}
    assert listed["colours"]["kind"] == "ZeroShotClassifier" and not listed["colours"]["explains"]
    assert listed["shapes"]["kind"] == "DescriptorClassifier" and listed["shapes"]["explains"]
    assert listed["colours"]["classes"] == ["red", "green", "blue", "yellow"]
    assert clf_client.get("/health").json()["classifiers"] == ["colours", "shapes"]


def test_saved_classifier_answers_like_the_loaded_library_object(
    clf_client, saved, toy_encoder
) -> None:
    from zsvl.persist import load_classifier

    data = [toy_png(20, colour="green", shape="star"), toy_png(21, colour="blue", shape="ring")]
    files = [("images", (f"{i}.png", d, "image/png")) for i, d in enumerate(data)]
    X = _X(toy_encoder, data)
    for name in ("colours", "shapes"):
        body = clf_client.post("/classify", files=files, data={"classifier": name}).json()
        clf = load_classifier(saved[name], toy_encoder)
        assert body["classifier"] == {"name": name, "kind": type(clf).__name__}
        proba = clf.predict_proba(X)
        for i, rec in enumerate(body["results"]):
            np.testing.assert_allclose(rec["probabilities"], proba[i], atol=1e-5)
            assert rec["label"] == clf.predict(X)[i]
        if name == "shapes":
            want = clf.explain(X, top=3)
            assert [
                [e["descriptor"] for e in r["explanation"]["evidence"]] for r in body["results"]
            ] == [[e.descriptor for e in w.evidence] for w in want]
        else:
            assert [r["label"] for r in body["results"]] == ["green", "blue"]


class _OtherWeights:
    """The toy encoder under another fingerprint (as if fine-tuned)."""

    def __init__(self, encoder) -> None:
        self._encoder = encoder

    fingerprint = "zsvl-toy-clip|sha256-0000000000000000|pp-0|fp32"

    def __getattr__(self, name):
        return getattr(self._encoder, name)


def test_a_classifier_of_another_model_is_refused_at_start(saved, toy_encoder) -> None:
    from zsvl.errors import EncoderMismatchError
    from zsvl.serve import build_service

    with pytest.raises(EncoderMismatchError, match="was fitted with the encoder"):
        build_service(classifiers=[str(saved["colours"])], encoder=_OtherWeights(toy_encoder))


def test_model_defaults_to_the_classifiers(saved, monkeypatch) -> None:
    import zsvl.embed
    from zsvl.serve import build_service

    seen = {}

    def fake_load(spec, **kwargs):  # record which spec the server would load
        seen["spec"] = spec
        raise RuntimeError("stop here")

    monkeypatch.setattr(zsvl.embed, "load_model", fake_load)
    with pytest.raises(RuntimeError, match="stop here"):
        build_service(classifiers=[str(saved["colours"])])
    assert seen["spec"] == "toy"
