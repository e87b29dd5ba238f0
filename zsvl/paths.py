"""Where zsvl keeps its files: the cache root and the packaged data folders."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

__all__ = ["zsvl_home", "prompts_dir"]


def zsvl_home() -> Path:
    """The cache root: ``$ZSVL_HOME`` or ``~/.cache/zsvl``. Created on first use."""
    root = Path(os.environ.get("ZSVL_HOME") or Path.home() / ".cache" / "zsvl").expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def prompts_dir() -> Path:
    """The ``prompts/`` folder (templates, LLM prompt texts, descriptors), editable or installed."""
    return Path(str(resources.files("zsvl._prompts")))
