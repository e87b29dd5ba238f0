"""Bad input gets a 4xx JSON error that says what was wrong, and the server keeps serving."""

from __future__ import annotations

import json

import pytest

from .helpers import make_service, png_bytes, toy_png

GOOD = {"query": "a red triangle", "k": 3}


@pytest.fixture
def tight(toy_encoder, toy_index_dir):
    """A client of a server with small limits: 60 kB bodies, 1,100 pixels, 3 images, k <= 20."""
    from fastapi.testclient import TestClient

    from zsvl.serve import Limits, create_app

    limits = Limits(
        max_upload_bytes=60_000,
        max_pixels=1100,
        max_images=3,
        max_queries=4,
        max_k=20,
        max_query_chars=50,
        max_classes=5,
    )
    svc = make_service(toy_encoder, toy_index_dir, limits=limits)
    with TestClient(create_app(svc)) as c:
        yield c
    svc.close()


def _check(response, status: int, code: str, words: str) -> None:
    body = response.json()
    assert response.status_code == status, body
    assert body["error"]["status"] == status and body["error"]["code"] == code, body
    assert words in body["error"]["message"], body


def _still_serving(c) -> None:
    r = c.post("/search", json=GOOD)
    assert r.status_code == 200 and len(r.json()["results"][0]["hits"]) == 3


def _image(name: str = "x.png", data: bytes | None = None, field: str = "images"):
    return [(field, (name, toy_png(0) if data is None else data, "image/png"))]


@pytest.mark.parametrize(
    "body, status, code, words",
    [
        (b"{bad json", 400, "malformed_json", "not valid JSON"),
        (b"[1, 2]", 422, "invalid_request", "valid dictionary"),
        (b'{"query": "a", "colour": 1}', 422, "invalid_request", "colour"),
        (b'{"k": 3}', 422, "empty_queries", "queries list is empty"),
        (b'{"query": "   "}', 422, "bad_queries", "non-empty string"),
        (b'{"query": "a", "queries": ["b"]}', 422, "bad_query", "not both"),
        (b'{"query": "a", "k": 0}', 422, "bad_k", "between 1 and 20"),
        (b'{"query": "a", "k": 21}', 422, "bad_k", "between 1 and 20"),
        (b'{"query": "a", "k": "many"}', 422, "invalid_request", "k"),
        (b'{"query": "a", "index": "nope"}', 404, "unknown_index", "Unknown index 'nope'"),
        (b'{"query": "a", "dedupe": 3}', 422, "bad_dedupe", "[-1, 1]"),
        (json.dumps({"query": "x" * 51}).encode(), 413, "queries_too_long", "at most 50"),
        (json.dumps({"queries": ["a"] * 5}).encode(), 413, "too_many_queries", "at most 4"),
    ],
)
def test_bad_text_search(tight, body: bytes, status: int, code: str, words: str) -> None:
    r = tight.post("/search", content=body, headers={"content-type": "application/json"})
    _check(r, status, code, words)
    _still_serving(tight)


def test_bad_images(tight) -> None:
    png = toy_png(0)
    cases = [
        (
            _image("bad.png", b"this is not an image"),
            400,
            "bad_image",
            "'bad.png' is not a recognised",
        ),
        (_image("empty.png", b""), 400, "empty_image", "empty"),
        (_image("cut.png", png[: len(png) // 2]), 400, "bad_image", "cannot be decoded"),
        (
            _image("big.png", png_bytes(__import__("numpy").zeros((40, 40, 3), "uint8"))),
            413,
            "image_too_large",
            "40x40 = 1,600 pixels",
        ),
        (_image() * 4, 413, "too_many_images", "at most 3"),
    ]
    for files, status, code, words in cases:
        for route in ("/name", "/classify"):
            data = {"classes": "red\nblue"} if route == "/classify" else {}
            _check(tight.post(route, files=files, data=data), status, code, words)
        fields = [("image", f[1]) for f in files]
        _check(tight.post("/search", files=fields), status, code, words)
        _still_serving(tight)


def test_body_too_large_by_header_and_while_streaming(tight) -> None:
    big = _image("huge.png", b"\x89PNG" + b"0" * 70_000)
    _check(tight.post("/name", files=big), 413, "body_too_large", "at most 60,000")

    def chunks():  # no Content-Length: the limit is enforced while reading
        for _ in range(10):
            yield b"x" * 10_000

    r = tight.post("/search", content=chunks(), headers={"content-type": "application/json"})
    _check(r, 413, "body_too_large", "at most 60,000")
    _still_serving(tight)


@pytest.mark.parametrize(
    "data, status, code, words",
    [
        ({"classes": ""}, 422, "empty_classes", "list is empty"),
        ({}, 422, "empty_classes", "Give 'classes'"),
        ({"classes": "[]"}, 422, "empty_classes", "list is empty"),
        ({"classes": '["red", '}, 400, "malformed_json", "not a valid JSON list"),
        ({"classes": '{"a": 1}'}, 422, "invalid_request", ""),
        ({"classes": '["red", 3]'}, 422, "bad_classes", "non-empty string"),
        ({"classes": "red\nred"}, 422, "bad_classes", "distinct"),
        ({"classes": "a,b,c,d,e,f"}, 413, "too_many_classes", "at most 5"),
        ({"classifier": "mine"}, 404, "unknown_classifier", "Unknown classifier 'mine'"),
        ({"descriptors": "../../etc/passwd"}, 422, "bad_descriptors", "not a path"),
        ({"descriptors": "no_such_set"}, 422, "bad_classifier", "No packaged descriptor file"),
        ({"classes": "red", "templates": "/etc/passwd.json"}, 422, "bad_templates", "not a path"),
        (
            {"classes": "red", "templates": "nosuchset"},
            422,
            "bad_classifier",
            "Unknown template set",
        ),
        ({"classes": "red", "top_k": "0"}, 422, "bad_k", "top_k must be between 1 and 20"),
        ({"classes": "red", "top_k": "two"}, 422, "bad_k", "top_k must be an integer"),
    ],
)
def test_bad_classify(tight, data: dict, status: int, code: str, words: str) -> None:
    if code == "invalid_request":  # a JSON object is not a list of class names
        code, words = "bad_classes", "JSON list"
    _check(tight.post("/classify", files=_image(), data=data), status, code, words)
    _still_serving(tight)


def test_bad_requests_of_every_kind(tight) -> None:
    _check(
        tight.post("/search", content=b"a red triangle", headers={"content-type": "text/plain"}),
        415,
        "unsupported_media_type",
        "application/json",
    )
    _check(
        tight.post("/classify", json={"classes": ["a"]}),
        415,
        "unsupported_media_type",
        "multipart/form-data",
    )
    _check(tight.post("/name", data={"index": "toy"}), 422, "no_image", "at least one image")
    _check(
        tight.post("/name", files=_image(), data={"index": "nope"}),
        404,
        "unknown_index",
        "loaded: toy",
    )
    _check(
        tight.post("/name", data={"images": "not a file"}, files=_image(field="other")),
        422,
        "bad_image",
        "must be an uploaded file",
    )
    _check(
        tight.post("/name", content=b"garbage", headers={"content-type": "multipart/form-data"}),
        400,
        "malformed_form",
        "boundary",
    )
    _check(
        tight.post("/search", content=b"\xff\xfe", headers={"content-type": "application/json"}),
        400,
        "malformed_json",
        "not valid JSON",
    )
    _check(tight.get("/search"), 405, "method_not_allowed", "Method Not Allowed")
    _check(tight.get("/nowhere"), 404, "not_found", "Not Found")
    _still_serving(tight)


def test_no_index_loaded(toy_encoder) -> None:
    from fastapi.testclient import TestClient

    from zsvl.serve import Service, create_app

    svc = Service(toy_encoder, {}, model="toy")
    with TestClient(create_app(svc)) as c:
        _check(c.post("/search", json=GOOD), 404, "no_index", "--index DIR")
        _check(c.post("/name", files=_image()), 404, "no_index", "--index DIR")
        ok = c.post("/classify", files=_image(), data={"classes": "red\nblue"})
        assert ok.status_code == 200 and ok.json()["results"][0]["label"] in ("red", "blue")
    svc.close()


def test_a_failing_model_call_is_a_500_and_the_server_goes_on(
    toy_encoder, toy_index_dir, monkeypatch
) -> None:
    from fastapi.testclient import TestClient

    from zsvl.serve import create_app

    svc = make_service(toy_encoder, toy_index_dir)
    calls = {"n": 0}
    real = svc._search_batch

    def flaky(items):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("simulated GPU out of memory")
        return real(items)

    svc.search_batcher.fn = flaky
    with TestClient(create_app(svc), raise_server_exceptions=False) as c:
        _check(c.post("/search", json=GOOD), 500, "internal_error", "keeps serving")
        _still_serving(c)
    svc.close()
