"""The one file hasher: same digest as hashlib, and it never blocks on or reads special files."""

from __future__ import annotations

import hashlib
import os

import pytest

from zsvl._hashing import sha256_file


def test_sha256_file_matches_hashlib_across_chunks(tmp_path):
    data = os.urandom(10_000)
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert sha256_file(path, chunk=777) == hashlib.sha256(data).hexdigest()
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert sha256_file(empty) == hashlib.sha256(b"").hexdigest()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
def test_sha256_file_refuses_fifo_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)  # nobody writes: a blocking open would hang forever
    with pytest.raises(OSError, match="not a regular file"):
        sha256_file(fifo)


def test_sha256_file_refuses_folders_and_dangling_links(tmp_path):
    with pytest.raises(OSError, match="not a regular file"):
        sha256_file(tmp_path)
    link = tmp_path / "gone.jpg"
    link.symlink_to(tmp_path / "missing.jpg")
    with pytest.raises(FileNotFoundError):
        sha256_file(link)
    loop = tmp_path / "loop.jpg"
    loop.symlink_to(loop)
    with pytest.raises(OSError):
        sha256_file(loop)


def test_sha256_file_limit_hashes_a_prefix(tmp_path):
    data = os.urandom(5000)
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    for limit in (0, 1, 777, 4096, 5000, 9999):
        assert (
            sha256_file(path, chunk=1000, limit=limit) == hashlib.sha256(data[:limit]).hexdigest()
        )
