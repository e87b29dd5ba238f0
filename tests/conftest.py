"""Shared fixtures: an isolated ZSVL_HOME, the shipped toy model and toy suite, loaded once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def _session_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every test session writes its caches to a fresh folder, never to ~/.cache."""
    home = tmp_path_factory.mktemp("zsvl_home")
    old = os.environ.get("ZSVL_HOME")
    os.environ["ZSVL_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("ZSVL_HOME", None)
    else:
        os.environ["ZSVL_HOME"] = old


@pytest.fixture(scope="session")
def toy_encoder():
    """The shipped tiny CLIP, uncached (tests that need the cache wrap it themselves)."""
    from zsvl.models import load_model

    return load_model("toy", device="cpu", cache=False, num_workers=0)


@pytest.fixture(scope="session")
def toy_suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The toy suite written once per session in the CoOp layout."""
    from zsvl.toy.suite import build_suite

    return Path(build_suite(tmp_path_factory.mktemp("toy_suite")))


@pytest.fixture(scope="session")
def vitb32_random():
    """ViT-B-32 with random weights: a real architecture for exactness checks (no download)."""
    from zsvl.models import load_model

    return load_model("ViT-B-32:random", device="cpu", cache=False, num_workers=0)
