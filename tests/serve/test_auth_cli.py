"""Bearer-token auth on and off, the token's sources, and the ``zsvl serve`` command line."""

from __future__ import annotations

import pytest

from .helpers import make_service, toy_png

TOKEN = "s3cret-token"


@pytest.fixture
def locked(toy_encoder, toy_index_dir):
    from fastapi.testclient import TestClient

    from zsvl.serve import create_app

    svc = make_service(toy_encoder, toy_index_dir)
    with TestClient(create_app(svc, token=TOKEN)) as c:
        yield c
    svc.close()


def _requests():
    files = [("images", ("a.png", toy_png(0), "image/png"))]
    return [
        ("get", "/indexes", {}),
        ("post", "/search", {"json": {"query": "a red star"}}),
        ("post", "/classify", {"files": files, "data": {"classes": "red\nblue"}}),
        ("post", "/name", {"files": files}),
    ]


def test_auth_on_refuses_missing_and_wrong_tokens(locked) -> None:
    for method, path, kwargs in _requests():
        for headers in (
            {},
            {"Authorization": "Bearer wrong"},
            {"Authorization": TOKEN},
            {"Authorization": f"Basic {TOKEN}"},
        ):
            r = getattr(locked, method)(path, headers=headers, **kwargs)
            assert r.status_code == 401, (path, headers)
            assert r.headers["www-authenticate"] == "Bearer"
            assert r.json()["error"]["code"] == "unauthorized"
            assert "Authorization: Bearer" in r.json()["error"]["message"]
        ok = getattr(locked, method)(path, headers={"Authorization": f"Bearer {TOKEN}"}, **kwargs)
        assert ok.status_code == 200, ok.json()


def test_auth_on_leaves_health_and_page_open(locked) -> None:
    health = locked.get("/health")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "version": health.json()["version"], "auth": True}
    full = locked.get("/health", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert full["auth"] is True and full["indexes"] == ["toy"] and "batching" in full
    assert locked.get("/").status_code == 200 and locked.get("/static/app.js").status_code == 200


def test_auth_off_needs_no_header(client) -> None:
    for method, path, kwargs in _requests():
        assert getattr(client, method)(path, **kwargs).status_code == 200
    assert client.get("/health").json()["auth"] is False


def test_token_from_option_or_environment(monkeypatch) -> None:
    from zsvl.serve.server import TOKEN_ENV, resolve_token

    monkeypatch.delenv(TOKEN_ENV, raising=False)
    assert resolve_token(None) is None and resolve_token("") is None
    monkeypatch.setenv(TOKEN_ENV, "from-env")
    assert resolve_token(None) == "from-env"
    assert resolve_token("from-option") == "from-option"


def test_cli_parses_serve_with_safe_defaults() -> None:
    from zsvl.cli import build_parser

    args = build_parser().parse_args(["serve", "--index", "a", "--index", "b=dir/b"])
    assert args.host == "127.0.0.1" and args.port == 8000 and args.token is None
    assert args.index == ["a", "b=dir/b"] and not args.no_batching and args.batch_size == 64
    assert args.threads is None  # main() then uses default_threads()


def test_cli_refuses_threads_below_one(capsys) -> None:
    from zsvl.cli import main

    assert main(["serve", "--model", "toy", "--threads", "0"]) == 2
    err = capsys.readouterr().err
    assert "--threads must be at least 1. Got 0." in err and "Traceback" not in err


def test_index_names_from_folders_or_given() -> None:
    from pathlib import Path

    from zsvl.errors import InvalidParameterError
    from zsvl.serve.server import _named_paths

    assert _named_paths(["x/toy", "mine=y/toy"], "index") == {
        "toy": Path("x/toy"),
        "mine": Path("y/toy"),
    }
    with pytest.raises(InvalidParameterError, match="named 'toy'; name them with --index"):
        _named_paths(["x/toy", "y/toy"], "index")


def test_cli_without_the_extra_says_how_to_install(monkeypatch, capsys) -> None:
    import importlib.util

    from zsvl.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "fastapi" else real(name, *a)
    )
    assert main(["serve", "--model", "toy"]) == 2
    err = capsys.readouterr().err
    assert "zsvl serve: error:" in err and "pip install 'zsvl[serve]'" in err


def test_cli_refuses_an_index_of_another_model(toy_index_dir, capsys) -> None:
    from zsvl.cli import main

    assert (
        main(["serve", "--index", str(toy_index_dir), "--model", "ViT-B-32:random", "--port", "1"])
        == 2
    )
    err = capsys.readouterr().err
    assert "zsvl serve: error:" in err and "was built with toy (dim 128)" in err
    assert "rebuild the index with this encoder or load the model it was built with" in err


def test_import_zsvl_and_its_cli_load_no_web_stack() -> None:
    import json
    import subprocess
    import sys

    code = (
        "import sys, json, zsvl, zsvl.serve; from zsvl.cli import build_parser; "
        "build_parser(); print(json.dumps([m for m in ('fastapi', 'uvicorn', 'starlette', "
        "'multipart', 'torch') if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_a_served_model_keeps_no_disk_cache_of_queries(toy_index_dir) -> None:
    """Queries users type are not written under $ZSVL_HOME (nor looked up in SQLite)."""
    from zsvl.embed.cached import CachedEncoder
    from zsvl.models.openclip import OpenClipEncoder
    from zsvl.serve import build_service

    svc = build_service(indexes=[str(toy_index_dir)], device="cpu")
    try:
        assert isinstance(svc.encoder, OpenClipEncoder)
        assert not isinstance(svc.encoder, CachedEncoder)
    finally:
        svc.close()


def test_freeze_loaded_heap_takes_live_objects_out_of_the_collector() -> None:
    import gc

    from zsvl.serve.server import freeze_loaded_heap

    assert gc.get_freeze_count() == 0
    try:
        freeze_loaded_heap()
        assert gc.get_freeze_count() > 1000  # this test process's modules, at least
    finally:
        gc.unfreeze()
