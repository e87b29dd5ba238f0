"""Fixtures for the embedding-cache tests: a fresh ZSVL_HOME, a fake encoder, PNG files."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import FakeEncoder, write_png


@pytest.fixture(autouse=True)
def zsvl_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own cache root; caching is on whatever the environment says."""
    home = tmp_path / "zsvl_home"
    monkeypatch.setenv("ZSVL_HOME", str(home))
    monkeypatch.delenv("ZSVL_NO_CACHE", raising=False)
    return home


@pytest.fixture
def fake() -> FakeEncoder:
    return FakeEncoder()


@pytest.fixture
def png_dir(tmp_path: Path) -> Path:
    """A folder of 6 distinct PNGs (two in a subfolder) and one non-image file."""
    root = tmp_path / "pngs"
    for i in range(4):
        write_png(root / f"img{i}.png", seed=i)
    for i in range(4, 6):
        write_png(root / "sub" / f"img{i}.png", seed=i)
    (root / "notes.txt").write_text("not an image")
    return root
