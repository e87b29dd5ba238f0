"""What weights a model spec loads, by content: the weights part of an encoder fingerprint.

A file-backed model (``ARCH:/path/file``, ``local-dir:/folder``, ``hf-hub:org/repo`` and tags
whose files sit in the Hugging Face cache) is identified by the SHA-256 of the files it loads,
never by their path: replace the weights in place and the fingerprint changes, so every cache
and index keyed by it stops matching; move or copy the folder and it stays the same.

Hashing a large file takes seconds, so each digest is remembered in a small JSON memo
(``$ZSVL_HOME/weights-sha256.json``) under the file's real path together with its size,
modification time (ns), inode and device; any change of those re-hashes the file. The memo is
written atomically; a damaged memo is ignored (everything is re-hashed) and rewritten.
Limit: a same-size in-place rewrite that also restores the old mtime is not noticed (the same
trade-off as make and rsync); replacing the file (a new inode) always is.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from zsvl._atomic import atomic_write_text
from zsvl._hashing import sha256_file
from zsvl.errors import WeightsNotFoundError

__all__ = ["file_digest", "files_digest", "local_dir_files", "memo_path"]

logger = logging.getLogger(__name__)

MEMO_NAME = "weights-sha256.json"
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt")
_lock = threading.Lock()


def memo_path() -> Path:
    """``$ZSVL_HOME/weights-sha256.json``."""
    from zsvl.paths import zsvl_home

    return zsvl_home() / MEMO_NAME


def _stamp(st: os.stat_result) -> dict[str, int]:
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino, "device": st.st_dev}


def _read_memo(path: Path) -> dict[str, Any]:
    try:
        memo = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        logger.warning("Ignoring the damaged weights hash memo %s (%s); re-hashing.", path, exc)
        return {}
    return memo if isinstance(memo, dict) else {}


def file_digest(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a weights file, from the memo when path, size, mtime and inode match."""
    real = Path(os.path.realpath(path))
    try:
        stamp = _stamp(real.stat())
    except OSError as exc:
        raise WeightsNotFoundError(f"Cannot read the weights file {real}: {exc}.") from exc
    memo_file = memo_path()
    with _lock:
        memo = _read_memo(memo_file)
        entry = memo.get(str(real))
        if (
            isinstance(entry, dict)
            and {k: entry.get(k) for k in stamp} == stamp
            and isinstance(entry.get("sha256"), str)
        ):
            return entry["sha256"]
    logger.info(
        "Hashing the weights file %s (%.0f MB) once; the digest is remembered.",
        real,
        stamp["size"] / 1e6,
    )
    try:
        digest = sha256_file(real)
    except OSError as exc:
        raise WeightsNotFoundError(f"Cannot read the weights file {real}: {exc}.") from exc
    with _lock:
        memo = _read_memo(memo_file)  # another process may have added entries meanwhile
        memo = {k: v for k, v in memo.items() if Path(k).exists()}  # forget deleted files
        memo[str(real)] = {**stamp, "sha256": digest}
        try:
            atomic_write_text(memo_file, json.dumps(memo, indent=1, sort_keys=True))
        except OSError as exc:  # a read-only home only costs a re-hash next time
            logger.warning("Could not write the weights hash memo %s (%s).", memo_file, exc)
    return digest


def files_digest(files: Iterable[tuple[str, str | os.PathLike[str]]]) -> str:
    """One hex SHA-256 over named files' digests: ``[("open_clip_config.json", path), ...]``.

    Names (not paths) enter the hash, so a copied or moved folder keeps its identity.
    """
    h = hashlib.sha256()
    for name, path in sorted(files, key=lambda item: item[0]):
        h.update(f"{name}\0{file_digest(path)}\n".encode())
    return h.hexdigest()


def local_dir_files(folder: str | os.PathLike[str]) -> list[tuple[str, Path]]:
    """The files of a ``local-dir:`` folder that can change the model: the config and every
    weights file open_clip might pick (``*.safetensors``, ``*.bin``, ``*.pth``, ``*.pt``)."""
    root = Path(folder)
    files = [
        p
        for p in sorted(root.iterdir())
        if p.is_file() and (p.name == "open_clip_config.json" or p.suffix in _WEIGHT_SUFFIXES)
    ]
    return [(p.name, p) for p in files]
