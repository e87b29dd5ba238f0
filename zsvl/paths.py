"""Where zsvl keeps its files: the cache root and the packaged data folders."""

from __future__ import annotations

import os
from pathlib import Path

from zsvl.errors import CacheError, ZsvlError

__all__ = ["zsvl_home", "prompts_dir"]


def zsvl_home() -> Path:
    """The cache root: ``$ZSVL_HOME`` or ``~/.cache/zsvl``. Created on first use.

    Raises ``CacheError`` (one line naming the path and the fix) when the folder cannot be
    created: the path or one of its parents is a file, or permission is denied.
    """
    from_env = os.environ.get("ZSVL_HOME")
    root = Path(from_env or Path.home() / ".cache" / "zsvl").expanduser()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        where = f"ZSVL_HOME={from_env!r}" if from_env else f"the default cache folder {root}"
        if root.exists() and not root.is_dir():
            why = "is a file, not a folder"
        elif isinstance(exc, (FileExistsError, NotADirectoryError)):
            why = "lies under a file, not a folder"
        else:
            why = f"cannot be created ({exc.strerror or exc})"
        raise CacheError(
            f"zsvl's cache root {where} {why}. Set ZSVL_HOME to a writable folder (it is created "
            f"if missing), or set ZSVL_NO_CACHE=1 to run without the embedding cache."
        ) from exc
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
