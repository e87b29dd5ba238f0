"""Where zsvl keeps its files: the cache root and the packaged data folders."""

from __future__ import annotations

import os
from pathlib import Path

from zsvl.errors import ZsvlError

__all__ = ["zsvl_home", "prompts_dir"]


def zsvl_home() -> Path:
    """The cache root: ``$ZSVL_HOME`` or ``~/.cache/zsvl``. Created on first use."""
    root = Path(os.environ.get("ZSVL_HOME") or Path.home() / ".cache" / "zsvl").expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def prompts_dir() -> Path:
    """The ``prompts/`` folder (templates, LLM prompt texts, descriptors).

    A built wheel carries it as ``zsvl/_prompts``; a source checkout or an editable install reads
    the repository's top-level ``prompts/`` directly, so edits show up without reinstalling.
    """
    package = Path(__file__).resolve().parent
    for candidate in (package / "_prompts", package.parent / "prompts"):
        if (candidate / "templates").is_dir():
            return candidate
    raise ZsvlError(
        f"zsvl's prompts folder is missing: looked in {package / '_prompts'} and "
        f"{package.parent / 'prompts'}. Reinstall zsvl (pip install zsvl) or restore prompts/."
    )
