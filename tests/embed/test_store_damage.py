"""Issue 11.5: every way a damaged store file fails is moved aside, never a permanent failure.

The patterns are the ones found by flipping random bytes of a real store: SQLite's own message
about a mangled schema that is not UTF-8 (``UnicodeDecodeError`` raised from
``PRAGMA journal_mode=WAL``), meta rows that are not UTF-8 or say the wrong thing, record headers
that turn a key into an int or a vector into text, and plain random flips.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from zsvl.embed.keys import text_key
from zsvl.embed.store import EmbeddingStore
from zsvl.errors import CacheError

from .helpers import seeded_unit_vector

DIM = 8


def _filled(root: Path, n: int = 20) -> tuple[EmbeddingStore, list[str], np.ndarray]:
    store = EmbeddingStore("fp", dim=DIM, root=root)
    keys = [text_key("fp", f"text {i}") for i in range(n)]
    vecs = np.stack([seeded_unit_vector(k.encode(), DIM) for k in keys])
    store.put_many(keys, vecs)
    store.close()  # checkpoint the WAL into the main file
    return store, keys, vecs


def _edit(path: Path, *statements: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA writable_schema=ON")
        for sql in statements:
            conn.execute(sql)
    finally:
        conn.close()


def _assert_recovers(store, keys, vecs, caplog) -> None:
    """A new store object (a new run) warns naming the moved file and then works normally."""
    fresh = EmbeddingStore("fp", dim=DIM, root=store.path.parent)
    with caplog.at_level(logging.WARNING, logger="zsvl.embed.store"):
        found, got = fresh.get_many(keys)
    np.testing.assert_array_equal(got[found], vecs[found])  # nothing wrong ever comes back
    moved = [
        p
        for p in store.path.parent.glob(f"{store.path.name}.corrupt-*")
        if not p.name.endswith(("-wal", "-shm"))
    ]
    assert fresh.corrupt_files == 1 and len(moved) == 1
    assert str(moved[0]) in caplog.text and "is corrupt" in caplog.text
    fresh.put_many(keys, vecs)
    again = EmbeddingStore("fp", dim=DIM, root=store.path.parent)  # and the next run hits
    found, got = again.get_many(keys)
    assert found.all() and again.corrupt_files == 0
    np.testing.assert_array_equal(got, vecs)


def test_schema_text_that_is_not_utf8_is_quarantined(tmp_path, caplog) -> None:
    """SQLite reports the mangled schema in a message Python cannot decode: UnicodeDecodeError
    from ``PRAGMA journal_mode=WAL`` (the failure that used to repeat on every run)."""
    store, keys, vecs = _filled(tmp_path)
    bad_sql = (
        "CAST(X'435245415445205441424c45206d65746120fbfb' AS TEXT)"  # "CREATE TABLE meta \xfb\xfb"
    )
    _edit(store.path, f"UPDATE sqlite_master SET sql = {bad_sql} WHERE name = 'meta'")
    with pytest.raises(UnicodeDecodeError):  # what a plain connection gets from this file
        sqlite3.connect(store.path).execute("PRAGMA journal_mode=WAL")
    _assert_recovers(store, keys, vecs, caplog)


@pytest.mark.parametrize(
    "damage",
    [
        "UPDATE meta SET value = CAST(X'66ff70' AS TEXT) WHERE name = 'fingerprint'",  # not UTF-8
        "UPDATE meta SET value = 'fq' WHERE name = 'fingerprint'",  # one flipped letter
        "UPDATE meta SET value = '8x' WHERE name = 'dim'",
        "UPDATE sqlite_master SET sql = 'CREATE TABLE meta (name TEXT PRIMARY KEY)' "
        "WHERE name = 'meta'",  # a column lost: 'table meta has 1 columns but 2 values...'
    ],
    ids=["not-utf8", "wrong-fingerprint", "wrong-dim", "column-lost"],
)
def test_damaged_meta_table_is_quarantined(tmp_path, caplog, damage) -> None:
    store, keys, vecs = _filled(tmp_path)
    _edit(store.path, damage)
    _assert_recovers(store, keys, vecs, caplog)


@pytest.mark.parametrize(
    "damage",
    [
        "UPDATE entries SET key = 12345 WHERE rowid = 3",  # an int where a key was
        "UPDATE entries SET vec = CAST(vec AS TEXT) WHERE rowid = 4",  # text where a vector was
        "UPDATE entries SET checksum = X'00' WHERE rowid = 5",
    ],
    ids=["int-key", "text-vector", "short-checksum"],
)
def test_rows_of_the_wrong_type_are_misses_not_crashes(tmp_path, damage) -> None:
    store, keys, vecs = _filled(tmp_path)
    _edit(store.path, damage)
    fresh = EmbeddingStore("fp", dim=DIM, root=tmp_path)
    found, got = fresh.get_many(keys)
    assert found.sum() >= len(keys) - 1 or fresh.corrupt_files == 1
    np.testing.assert_array_equal(got[found], vecs[found])
    fresh.put_many(keys, vecs)
    assert fresh.get_many(keys)[0].all()


def test_a_newer_schema_is_refused_not_moved(tmp_path) -> None:
    store, keys, _ = _filled(tmp_path)
    _edit(store.path, "UPDATE meta SET value = '7' WHERE name = 'schema'")
    with pytest.raises(CacheError, match="newer zsvl"):
        EmbeddingStore("fp", dim=DIM, root=tmp_path).get_many(keys)
    assert store.path.exists()


def test_random_byte_flips_never_fail_a_run_or_return_a_wrong_vector(tmp_path) -> None:
    """40 random bytes flipped past the header, 60 times: each run gets right vectors or misses,
    and two writes later every entry is served again."""
    base, keys, vecs = _filled(tmp_path / "base", n=300)
    pristine = base.path.read_bytes()
    for seed in range(60):
        rng = np.random.default_rng(seed)
        data = bytearray(pristine)
        for at in rng.integers(100, len(data), 40):
            data[at] ^= int(rng.integers(1, 256))
        root = tmp_path / f"r{seed}"
        root.mkdir()
        (root / base.path.name).write_bytes(bytes(data))
        store = EmbeddingStore("fp", dim=DIM, root=root)
        for _ in range(2):
            found, got = store.get_many(keys)
            np.testing.assert_array_equal(got[found], vecs[found])
            store.put_many(keys, vecs)
        found, got = store.get_many(keys)
        assert found.all(), f"seed {seed}: {int((~found).sum())} entries still missing"
        np.testing.assert_array_equal(got, vecs)
        store.close()
        shutil.rmtree(root)
