"""Every endpoint with the toy model and a 2,000-caption toy index; answers equal the library's."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from .helpers import assert_same_hits, png_bytes, toy_png

QUERIES = ["a red triangle", "a photo of a blue striped star.", "a small green circle"]


def _png_array(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_health_reports_model_and_batching(client) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["model"] == "toy" and body["auth"] is False
    assert body["indexes"] == ["toy"] and body["batching"]["enabled"] is True
    assert body["fingerprint"].startswith("zsvl-toy-clip|")


def test_indexes_carry_their_manifest(client, toy_index_dir) -> None:
    from zsvl.index.storage import read_manifest

    body = client.get("/indexes").json()
    (entry,) = body["indexes"]
    assert entry["name"] == "toy" and entry["count"] == 2000 and entry["dim"] == 128
    assert entry["manifest"] == json.loads(json.dumps(read_manifest(toy_index_dir)))
    assert "record" in entry["metadata_columns"]
    assert "toy_shapes_cbd" in body["descriptor_sets"] and body["classifiers"] == []


def test_text_search_equals_library(client, toy_index) -> None:
    single = client.post("/search", json={"query": QUERIES[0], "k": 7}).json()
    many = client.post("/search", json={"queries": QUERIES, "k": 7, "index": "toy"}).json()
    assert single["index"] == "toy" and single["k"] == 7
    assert [r["query"] for r in many["results"]] == QUERIES
    for query, result in zip(QUERIES, many["results"], strict=True):
        want = toy_index.search_texts([query], 7)  # the library, one query at a time
        assert_same_hits(result["hits"], want.ids[0], want.scores[0], want.captions[0])
        assert all(h["record"] == h["id"] for h in result["hits"])  # metadata: corpus line
    assert_same_hits(single["results"][0]["hits"], *_first(toy_index.search_texts(QUERIES[:1], 7)))


def _first(res):
    return res.ids[0], res.scores[0], res.captions[0]


def test_text_search_dedupe_equals_library(client, toy_index) -> None:
    body = client.post("/search", json={"query": QUERIES[1], "k": 5, "dedupe": 0.94}).json()
    want = toy_index.search_texts([QUERIES[1]], 5, dedupe=0.94)
    assert_same_hits(body["results"][0]["hits"], *_first(want))
    captions = [h["caption"] for h in body["results"][0]["hits"]]
    assert len(set(captions)) == len(captions)


def test_image_search_equals_library(client, toy_index, toy_encoder) -> None:
    data = [toy_png(0, shape="star", colour="yellow"), toy_png(1, shape="ring", colour="blue")]
    files = [
        ("image", ("star.png", data[0], "image/png")),
        ("image", ("ring.png", data[1], "image/png")),
    ]
    body = client.post("/search", files=files, data={"k": "6", "index": "toy"}).json()
    X = toy_encoder.encode_images([_png_array(d) for d in data]).embeddings
    want = toy_index.search(X, 6)
    assert [r["query"] for r in body["results"]] == ["star.png", "ring.png"]
    for i, result in enumerate(body["results"]):
        assert_same_hits(result["hits"], want.ids[i], want.scores[i], want.captions[i])


def test_classify_with_a_class_list_equals_library(client, toy_encoder) -> None:
    from zsvl.methods.zeroshot import ZeroShotClassifier

    classes = ["red triangle", "blue circle", "green star", "yellow square"]
    data = [toy_png(2, shape="triangle", colour="red"), toy_png(3, shape="circle", colour="blue")]
    files = [("images", (f"{i}.png", d, "image/png")) for i, d in enumerate(data)]
    as_json = client.post(
        "/classify", files=files, data={"classes": json.dumps(classes), "top_k": "3"}
    ).json()
    as_lines = client.post(
        "/classify", files=files, data={"classes": "\n".join(classes), "top_k": "3"}
    ).json()
    clf = ZeroShotClassifier(toy_encoder, classes).fit()
    X = toy_encoder.encode_images([_png_array(d) for d in data]).embeddings
    proba, scores = clf.predict_proba(X), clf.decision_function(X)
    for body in (as_json, as_lines):
        assert body["classes"] == classes and body["classifier"]["kind"] == "ZeroShotClassifier"
        for i, rec in enumerate(body["results"]):
            assert rec["image"] == f"{i}.png"
            np.testing.assert_allclose(rec["probabilities"], proba[i], atol=1e-5)
            order = np.argsort(-proba[i], kind="stable")[:3]
            assert [t["label"] for t in rec["top_k"]] == [classes[j] for j in order]
            assert rec["label"] == classes[int(np.argmax(scores[i]))]
            assert rec["score"] == pytest.approx(float(scores[i].max()), abs=1e-5)
            assert "explanation" not in rec
    assert as_json["results"][0]["label"] == "red triangle"
    assert as_json["results"][1]["label"] == "blue circle"


def test_classify_with_descriptors_explains(client, toy_encoder) -> None:
    from zsvl.methods.descriptors import DescriptorClassifier
    from zsvl.text.descriptors import packaged_descriptors

    data = [toy_png(4, shape="star"), toy_png(5, shape="cross")]
    files = [("images", (f"{i}.png", d, "image/png")) for i, d in enumerate(data)]
    body = client.post(
        "/classify", files=files, data={"descriptors": "toy_shapes_cbd", "explain": "4"}
    ).json()
    clf = DescriptorClassifier(toy_encoder, packaged_descriptors("toy_shapes_cbd")).fit()
    X = toy_encoder.encode_images([_png_array(d) for d in data]).embeddings
    want = clf.explain(X, top=4)
    assert body["classes"] == list(clf.classes_)
    for rec, exp, p in zip(body["results"], want, clf.predict_proba(X), strict=True):
        np.testing.assert_allclose(rec["probabilities"], p, atol=1e-5)
        assert rec["explanation"]["label"] == exp.classname == rec["label"]
        got = rec["explanation"]["evidence"]
        assert [e["descriptor"] for e in got] == [e.descriptor for e in exp.evidence]
        np.testing.assert_allclose(
            [e["contribution"] for e in got], [e.contribution for e in exp.evidence], atol=1e-5
        )


def test_name_equals_library(client, toy_encoder, toy_index) -> None:
    from zsvl.methods.vocab_free import VocabularyFreeClassifier

    data = [
        toy_png(6, shape="triangle", colour="red", pattern="striped"),
        toy_png(7, shape="hexagon", colour="green"),
    ]
    files = [("images", (f"{i}.png", d, "image/png")) for i, d in enumerate(data)]
    body = client.post("/name", files=files, data={"top_k": "4"}).json()
    X = toy_encoder.encode_images([_png_array(d) for d in data]).embeddings
    want = VocabularyFreeClassifier(toy_encoder, toy_index).fit().predict_words(X)
    assert body["index"] == "toy"
    for i, rec in enumerate(body["results"]):
        assert rec["label"] == want.labels[i] and rec["image"] == f"{i}.png"
        assert rec["probability"] == pytest.approx(float(want.scores[i]), abs=1e-5)
        assert [c["label"] for c in rec["candidates"]] == [n for n, _ in want.candidates[i][:4]]
        assert rec["captions"] == want.captions[i]


def test_openapi_documents_every_route(client) -> None:
    spec = client.get("/openapi.json").json()
    assert {"/health", "/indexes", "/search", "/classify", "/name"} <= set(spec["paths"])
    body = spec["paths"]["/search"]["post"]["requestBody"]["content"]
    assert {"application/json", "multipart/form-data"} <= set(body)
    assert client.get("/docs").status_code == 200


def test_page_and_assets_are_served_locally(client) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for asset in ("/static/app.js", "/static/style.css"):
        assert client.get(asset).status_code == 200
    text = page.text + client.get("/static/app.js").text + client.get("/static/style.css").text
    assert "http://" not in text and "https://" not in text and "//cdn" not in text


def test_classifier_cache_reuses_fitted_weights(client, service) -> None:
    files = [("images", ("a.png", toy_png(8), "image/png"))]
    for _ in range(3):
        client.post("/classify", files=files, data={"classes": "red\nblue"})
    assert len(service._fitted) == 1


def test_png_helper_round_trips() -> None:
    array = np.arange(32 * 32 * 3, dtype=np.uint8).reshape(32, 32, 3)
    np.testing.assert_array_equal(_png_array(png_bytes(array)), array)
