"""Fixtures for the server tests: the toy model, a small toy caption index, toy PNGs, servers.

The API is exercised in process (FastAPI's TestClient) and over real sockets on 127.0.0.1
(uvicorn in a thread, or ``zsvl serve`` in a subprocess for the load test).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 'zsvl[serve]'")
pytest.importorskip("uvicorn", reason="the serve extra is not installed: pip install 'zsvl[serve]'")
pytest.importorskip(
    "multipart", reason="the serve extra is not installed: pip install 'zsvl[serve]'"
)

from .helpers import LiveServer, make_service  # noqa: E402

N_CAPTIONS = 2000


@pytest.fixture(scope="session")
def toy_index_dir(tmp_path_factory: pytest.TempPathFactory, toy_encoder) -> Path:
    """A Flat caption index of 2,000 toy captions built with the toy model (about 3 s)."""
    from zsvl.index import build_index
    from zsvl.index.recipe import resolve_corpus_path

    out = tmp_path_factory.mktemp("serve_index") / "toy"
    build_index(
        resolve_corpus_path(f"toy:{N_CAPTIONS}"), toy_encoder, out, tune_queries=100, model="toy"
    )
    return out


@pytest.fixture(scope="session")
def toy_index(toy_index_dir: Path, toy_encoder):
    from zsvl.index.search import CaptionIndex

    return CaptionIndex.load(toy_index_dir, toy_encoder)


@pytest.fixture
def service(toy_encoder, toy_index_dir):
    svc = make_service(toy_encoder, toy_index_dir)
    yield svc
    svc.close()


@pytest.fixture
def client(service):
    from fastapi.testclient import TestClient

    from zsvl.serve import create_app

    with TestClient(create_app(service)) as c:
        yield c


@pytest.fixture
def live_server(service) -> Iterator[LiveServer]:
    from zsvl.serve import create_app

    with LiveServer(create_app(service)) as server:
        yield server
