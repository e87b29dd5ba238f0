"""One file hasher for the whole package: the SHA-256 of a file's bytes, read in chunks.

Used for model weights identity, index manifests and shard checksums, and image cache keys.
``sha256_file`` never reads a non-regular file (a FIFO would block forever, a device never end):
it raises ``OSError`` for one, so callers can treat it like any other unreadable file.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

__all__ = ["sha256_file", "sha256_bytes"]

CHUNK = 1 << 22  # bytes read at a time (4 MiB)


def sha256_file(
    path: str | os.PathLike[str], *, chunk: int = CHUNK, limit: int | None = None
) -> str:
    """Hex SHA-256 of the bytes of the regular file at ``path`` (only the first ``limit`` bytes
    when ``limit`` is given, e.g. the header of a large index file).

    Raises ``OSError`` when the path is missing, a dangling link or a link loop, or names
    something other than a regular file (FIFO, socket, device, folder). The file is opened with
    ``O_NONBLOCK`` and checked with ``fstat`` before reading, so a FIFO never blocks the open.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(Path(path), flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise OSError(f"{os.fspath(path)} is not a regular file; refusing to read it")
        if flags & getattr(os, "O_NONBLOCK", 0):
            os.set_blocking(fd, True)
        digest = hashlib.sha256()
        with os.fdopen(fd, "rb", closefd=True) as fh:
            fd = -1
            left = limit
            while (left is None or left > 0) and (
                block := fh.read(chunk if left is None else min(chunk, left))
            ):
                digest.update(block)
                if left is not None:
                    left -= len(block)
        return digest.hexdigest()
    finally:
        if fd >= 0:
            os.close(fd)


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()
