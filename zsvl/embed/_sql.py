"""The SQL side of the embedding store: row checksums, batched statements, damage detection.

Functions take an open ``sqlite3.Connection``; :class:`zsvl.embed.store.EmbeddingStore` owns the
connection, the file and what happens when ``DamagedStore`` (or a damage-type SQLite error, see
:func:`is_corruption`) is raised: the file is moved aside and a fresh one started.
"""

from __future__ import annotations

import hashlib
import sqlite3
from typing import Any

__all__ = [
    "DamagedStore",
    "is_corruption",
    "checksum",
    "select",
    "insert_checked",
    "delete_checked",
]

CHUNK = 500  # keys per SELECT ... IN (...), below every SQLite variable limit

# SQLite errors that say something about the machine, not the file: the store is left alone and
# the user gets a CacheError. Every other failure to open or read the file means it is damaged.
_ENVIRONMENT_CODES = (
    "SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_FULL", "SQLITE_READONLY", "SQLITE_CANTOPEN",
    "SQLITE_IOERR", "SQLITE_PERM", "SQLITE_NOMEM", "SQLITE_INTERRUPT", "SQLITE_AUTH",
    "SQLITE_NOLFS",
)  # fmt: skip
_ENVIRONMENT_WORDS = ("locked", "busy", "readonly", "read-only", "unable to open", "disk")


def checksum(key: str, blob: bytes) -> bytes:
    """BLAKE2b-128 of ``key + NUL + vector bytes``: stored beside each row, checked on read."""
    return hashlib.blake2b(key.encode("utf-8") + b"\0" + blob, digest_size=16).digest()


def is_corruption(exc: Exception) -> bool:
    """True for errors that mean the file is damaged, False for the machine's own trouble
    (locked, busy, read-only, full disk, I/O errors, out of memory).

    Damage shows in many ways besides SQLITE_CORRUPT: SQLITE_ERROR from a mangled schema, text
    that is not UTF-8 ("Could not decode to UTF-8 column ..."), or a ``UnicodeDecodeError``
    raised while Python decodes SQLite's own error message about mangled names.
    """
    if isinstance(exc, UnicodeDecodeError):
        return True
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name:
        return not name.startswith(_ENVIRONMENT_CODES)
    return not any(word in str(exc).lower() for word in _ENVIRONMENT_WORDS)


class DamagedStore(Exception):
    """Raised inside the store when the file's content cannot be right (caught by ``EmbeddingStore._run``)."""


def select(conn: sqlite3.Connection, keys: list[str]) -> list[tuple]:
    """Rows ``(key, vec, checksum)`` of the distinct ``keys`` found, one query per ``CHUNK``."""
    unique = list(dict.fromkeys(keys))
    rows: list[tuple] = []
    for start in range(0, len(unique), CHUNK):
        chunk = unique[start : start + CHUNK]
        marks = ",".join("?" * len(chunk))
        rows += conn.execute(
            f"SELECT key, vec, checksum FROM entries WHERE key IN ({marks})", chunk
        ).fetchall()
    return rows


def transaction(conn: sqlite3.Connection, sql: str, rows: list[tuple[Any, ...]]) -> None:
    """``executemany(sql, rows)`` in one write transaction, rolled back on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany(sql, rows)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def insert(conn: sqlite3.Connection, rows: list[tuple[str, bytes, bytes]]) -> None:
    """Insert or replace ``(key, vec, checksum)`` rows in one transaction."""
    transaction(conn, "INSERT OR REPLACE INTO entries VALUES (?, ?, ?)", rows)


def insert_checked(conn: sqlite3.Connection, rows: list[tuple[str, bytes, bytes]]) -> None:
    """Insert ``rows``, then read their keys back: a key that cannot be found right after it
    was written (a damaged index) triggers the whole-file check of ``check_file``. One
    indexed SELECT per 500 keys: measured on the shared 2-core machine, 10,000 x 512-d
    entries in batches of 1,000 took 0.66-0.74 s to store instead of 0.50-0.54 s, about
    0.15% of the 140 s ViT-B-32 needs to encode them on the same CPU."""
    insert(conn, rows)
    keys = [key for key, _, _ in rows]
    back = {
        key
        for key, blob, stored in select(conn, keys)
        if isinstance(key, str) and isinstance(blob, bytes) and checksum(key, blob) == stored
    }
    if len(back) < len(set(keys)):
        check_file(conn)


def check_file(conn: sqlite3.Connection) -> None:
    """Raise ``DamagedStore`` when ``PRAGMA integrity_check`` finds a problem.

    Bad rows often sit beside damage SQLite does not notice on its own (an index that has
    lost rows, so later lookups and replaces misbehave; ``quick_check`` misses that). The
    check reads every page and index, O(file size), so it runs only once damage was seen.
    """
    problems = [row[0] for row in conn.execute("PRAGMA integrity_check(5)").fetchall()]
    if problems != ["ok"]:
        raise DamagedStore(f"PRAGMA integrity_check found: {'; '.join(map(str, problems))}")


def delete_checked(conn: sqlite3.Connection, bad: list[tuple[Any, Any]]) -> None:
    """Delete rows that failed their checksum, after ``check_file`` found the file sound."""
    check_file(conn)
    delete(conn, bad)


def delete(conn: sqlite3.Connection, bad: list[tuple[Any, Any]]) -> None:
    """Delete rows that failed their checksum, unless another process already rewrote them."""
    transaction(conn, "DELETE FROM entries WHERE key = ? AND checksum = ?", bad)
