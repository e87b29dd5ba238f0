"""Helpers of the server tests: toy PNGs, a live uvicorn server, answer comparison."""

from __future__ import annotations

import io
import socket
import threading
import time
from typing import Any


def png_bytes(array: Any) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG")
    return out.getvalue()


def toy_png(index: int, **fixed: str) -> bytes:
    """A toy-world image (32 x 32 RGB) as PNG bytes; a pure function of its arguments."""
    from zsvl.toy.render import render_image

    return png_bytes(render_image(11, index, **fixed)[0])


def make_service(toy_encoder, toy_index_dir, **kwargs):
    from zsvl.serve import build_service

    return build_service(indexes=[str(toy_index_dir)], encoder=toy_encoder, model="toy", **kwargs)


class LiveServer:
    """uvicorn serving ``app`` on 127.0.0.1 (a free port) in a daemon thread."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start within 30 s")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        self.sock.close()


def assert_same_hits(
    hits: list[dict], ids: Any, scores: Any, captions: list[str], tol: float = 1e-4
) -> None:
    """A server answer equals the library's: scores within ``tol``; the same ids in the same
    order, except that captions whose scores tie within ``tol`` may come in either order (and a
    tie straddling the k-th place may pick either member)."""
    import numpy as np

    want_ids = [int(i) for i in ids if i >= 0]
    want_scores = [float(s) for s, i in zip(scores, ids, strict=True) if i >= 0]
    assert len(hits) == len(want_ids)
    np.testing.assert_allclose([h["score"] for h in hits], want_scores, atol=tol, rtol=0)
    by_id = dict(zip(want_ids, captions, strict=True))
    start = 0
    while start < len(want_ids):  # walk the groups of tied scores
        end = start + 1
        while end < len(want_ids) and abs(want_scores[end] - want_scores[end - 1]) <= tol:
            end += 1
        got = {h["id"] for h in hits[start:end]}
        if end < len(want_ids):  # a group inside the top k: the same set of ids
            assert got == set(want_ids[start:end]), (start, hits[start:end], want_ids[start:end])
        for h in hits[start:end]:
            if h["id"] in by_id:
                assert h["caption"] == by_id[h["id"]]
        start = end


def multipart(fields: dict[str, str], files: list[tuple[str, str, bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body and its content type (for clients without a form encoder)."""
    boundary = "zsvl-test-boundary-7f3a"
    parts = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
            f"{value}\r\n".encode()
        )
    for field, filename, data in files:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; '
            f'filename="{filename}"\r\nContent-Type: image/png\r\n\r\n'.encode()
            + data
            + b"\r\n"
        )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"
