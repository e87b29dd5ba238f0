"""A bounded load test against 127.0.0.1: 32 concurrent clients for 20 s against ``zsvl serve``
started from the command line. No request may fail and every answer must equal the library's
for the same input. Stops by itself (the clients run for a fixed time; the server is then
terminated)."""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from .helpers import assert_same_hits, multipart, toy_png

CLIENTS = 32
SECONDS = 20.0
CLASSES = ["red star", "blue ring", "green square", "yellow triangle", "purple cross"]
QUERIES = [
    f"a photo of a {c} {s}."
    for c in ("red", "blue", "green", "yellow", "purple")
    for s in ("star", "ring", "square", "triangle", "cross", "arrow")
]


@pytest.fixture
def cli_server(toy_index_dir):
    """``python -m zsvl.cli serve`` on 127.0.0.1, a free port chosen by the OS."""
    cmd = [
        sys.executable,
        "-m",
        "zsvl.cli",
        "serve",
        "--index",
        str(toy_index_dir),
        "--model",
        "toy",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--device",
        "cpu",
    ]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "ZSVL_SERVE_TOKEN": ""},
    )
    port, seen = None, []
    deadline = time.monotonic() + 180
    while port is None and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        match = re.search(r"running on http://127\.0\.0\.1:(\d+)", line, re.IGNORECASE)
        port = int(match.group(1)) if match else None
    if port is None:
        proc.kill()
        pytest.fail("zsvl serve did not start:\n" + "".join(seen))
    threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep the pipe drained
    yield port
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def _expected(toy_encoder, toy_index):
    """The library's answers: per query, per image (search and classification)."""
    from PIL import Image

    from zsvl.methods.zeroshot import ZeroShotClassifier

    images = [
        toy_png(40 + i, shape=s, colour=c)
        for i, (c, s) in enumerate(
            [("red", "star"), ("blue", "ring"), ("green", "square"), ("pink", "arrow")]
        )
    ]
    X = toy_encoder.encode_images(
        [np.asarray(Image.open(io.BytesIO(d)).convert("RGB")) for d in images]
    ).embeddings
    text = {q: toy_index.search_texts([q], 5) for q in QUERIES}
    image_hits = toy_index.search(X, 5)
    proba = ZeroShotClassifier(toy_encoder, CLASSES).fit().predict_proba(X)
    return images, text, image_hits, proba


@pytest.mark.slow
def test_32_clients_for_20_seconds_get_the_librarys_answers(
    cli_server, toy_encoder, toy_index
) -> None:
    images, text, image_hits, proba = _expected(toy_encoder, toy_index)
    counts = {"search": 0, "image": 0, "classify": 0}
    failures: list[str] = []
    latencies: list[float] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + SECONDS

    def client(seed: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", cli_server, timeout=60)
        i = seed
        while time.monotonic() < stop_at and len(failures) < 10:
            i += 1
            kind = ("image", "classify")[(i // 8) % 2] if i % 8 == 0 else "search"
            try:
                t0 = time.perf_counter()
                if kind == "search":
                    q = QUERIES[i % len(QUERIES)]
                    conn.request(
                        "POST",
                        "/search",
                        json.dumps({"query": q, "k": 5}),
                        {"Content-Type": "application/json"},
                    )
                else:
                    j = i % len(images)
                    fields = {"k": "5"} if kind == "image" else {"classes": json.dumps(CLASSES)}
                    field = "image" if kind == "image" else "images"
                    body, ctype = multipart(fields, [(field, f"{j}.png", images[j])])
                    conn.request(
                        "POST",
                        "/search" if kind == "image" else "/classify",
                        body,
                        {"Content-Type": ctype},
                    )
                response = conn.getresponse()
                payload = json.loads(response.read())
                elapsed = time.perf_counter() - t0
                assert response.status == 200, payload
                rec = payload["results"][0]
                if kind == "search":
                    want = text[q]
                    assert_same_hits(rec["hits"], want.ids[0], want.scores[0], want.captions[0])
                elif kind == "image":
                    assert_same_hits(
                        rec["hits"], image_hits.ids[j], image_hits.scores[j], image_hits.captions[j]
                    )
                else:
                    np.testing.assert_allclose(rec["probabilities"], proba[j], atol=1e-5)
                    assert rec["label"] == CLASSES[int(np.argmax(proba[j]))]
                with lock:
                    counts[kind] += 1
                    latencies.append(elapsed)
            except Exception as exc:  # noqa: BLE001 - every failure is reported below
                with lock:
                    failures.append(f"{kind}: {type(exc).__name__}: {exc}"[:500])
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", cli_server, timeout=60)
        conn.close()

    threads = [threading.Thread(target=client, args=(s,), daemon=True) for s in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(SECONDS + 120)
    assert not any(t.is_alive() for t in threads), "a client did not finish"
    assert failures == []
    total = sum(counts.values())
    assert counts["search"] > 0 and counts["image"] > 0 and counts["classify"] > 0, counts
    conn = http.client.HTTPConnection("127.0.0.1", cli_server, timeout=30)
    conn.request("GET", "/health")
    health = json.loads(conn.getresponse().read())
    batches = health["batching"]["search"]
    assert batches["items"] >= counts["search"] + counts["image"]
    assert batches["largest_batch"] > 1  # concurrent requests were batched
    p50, p99 = np.percentile(latencies, [50, 99])
    print(
        f"\nload test: {total} requests in {SECONDS:.0f} s ({total / SECONDS:.1f}/s) from "
        f"{CLIENTS} clients, {counts}; p50 {1000 * p50:.0f} ms, p99 {1000 * p99:.0f} ms; "
        f"search batches: {batches}"
    )
