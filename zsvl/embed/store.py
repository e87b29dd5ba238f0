"""The on-disk embedding store: content-addressed keys -> float32 vectors, one file per encoder.

Design. Each encoder fingerprint gets its own SQLite database under
``zsvl_home()/embeddings/<name>-<hash>.sqlite`` with one table ``entries(key, vec, checksum)``;
a ``meta`` table records the full fingerprint and the dimension. SQLite was chosen over
hand-rolled shard files because it already gives what a shared cache needs:

- atomic, batched writes: one ``put_many`` is one transaction (all rows or none), and in WAL mode
  with ``synchronous=NORMAL`` a commit appends to the write-ahead log without an fsync (fsync
  happens at checkpoints only), so 10,000 entries cost one transaction, not 10,000 files;
- safe concurrent use by several processes: WAL lets readers run beside one writer, writers take
  the lock up front (``BEGIN IMMEDIATE``) and wait on each other with a busy timeout;
- a torn write never becomes visible (the WAL frames are checksummed and a commit is all or
  nothing), and batched reads are one indexed ``IN (...)`` query per 500 keys.

What SQLite does not do is notice silently flipped bytes, so each entry carries its own
BLAKE2b-128 checksum of ``key + vector bytes``; a mismatch is logged, the row deleted and
reported as a miss (the caller recomputes and rewrites it). Any other failure to open or read
the file that is not the machine's fault (locked, read-only, full disk, I/O error) means the
file is damaged: not a database, malformed pages, a mangled schema or meta table, text that is
not UTF-8. Such a file is moved aside to ``*.corrupt-<time>-<pid>-<id>`` with a warning naming
it, and a fresh database is started, so the cache keeps working. Deleting one model's
entries is deleting its file (``EmbeddingStore.delete``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from zsvl.embed import _sql
from zsvl.errors import CacheError, InvalidParameterError
from zsvl.paths import zsvl_home

__all__ = ["EmbeddingStore", "store_path"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

_SCHEMA_VERSION = "1"
_SQLITE_HEADER = b"SQLite format 3\x00"
_BUSY_TIMEOUT_MS = 60_000  # how long a writer waits for another process's transaction
_PAGE_SIZE = 16384  # bytes per database page for new files
_DTYPE = np.dtype("<f4")  # vectors are stored as little-endian float32 whatever the host


def store_path(fingerprint: str, root: str | os.PathLike[str] | None = None) -> Path:
    """The database file of ``fingerprint`` under ``root`` (default ``zsvl_home()/embeddings``).

    The name is a readable slug of the fingerprint plus 16 hex digits of its hash, so two
    fingerprints never share a file and a user can tell the files apart.
    """
    base = Path(root) if root is not None else zsvl_home() / "embeddings"
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", fingerprint).strip("._")[:48] or "encoder"
    digest = hashlib.blake2b(fingerprint.encode("utf-8"), digest_size=8).hexdigest()
    return base / f"{slug}-{digest}.sqlite"


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None


class EmbeddingStore:
    """Persistent map from key (hex str) to a float32 vector of length ``dim``, for one encoder.

    Parameters
    ----------
    fingerprint : the encoder fingerprint this store belongs to; selects the file.
    dim : the embedding dimension; every vector stored or returned has this length.
    root : folder of the store files (default ``zsvl_home()/embeddings``).

    Safe to share between threads (one connection behind a lock) and between processes (SQLite
    locking); after ``fork`` the child opens its own connection.
    """

    def __init__(
        self, fingerprint: str, *, dim: int, root: str | os.PathLike[str] | None = None
    ) -> None:
        if not isinstance(fingerprint, str) or not fingerprint:
            raise InvalidParameterError(
                f"The 'fingerprint' of an EmbeddingStore must be a non-empty str. "
                f"Got {fingerprint!r}."
            )
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim <= 0:
            raise InvalidParameterError(
                f"The 'dim' of an EmbeddingStore must be an int > 0. Got {dim!r}."
            )
        self.fingerprint = fingerprint
        self.dim = int(dim)
        self.path = store_path(fingerprint, root)
        self.corrupt_entries = 0  # entries that failed their checksum since this object was made
        self.corrupt_files = 0  # database files moved aside since this object was made
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._pid = -1
        self._ino: int | None = None  # inode of the database file last opened

    def __repr__(self) -> str:
        return f"EmbeddingStore(fingerprint={self.fingerprint!r}, dim={self.dim}, path={self.path})"

    # -- public API -------------------------------------------------------------------------

    def get_many(self, keys: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Look up ``keys`` in one batch.

        Returns ``(found, vectors)``: ``found`` is a bool array of shape (n_keys,), ``vectors`` a
        float32 array of shape (n_keys, dim) whose rows for missing keys are zero. Entries that
        fail their checksum are logged, deleted and reported as missing.
        """
        keys = list(keys)
        found = np.zeros(len(keys), dtype=bool)
        out = np.zeros((len(keys), self.dim), dtype=np.float32)
        if not keys:
            return found, out
        rows: list[tuple[Any, ...]] = self._run(lambda conn: _sql.select(conn, keys), default=[])
        positions: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            positions.setdefault(key, []).append(i)
        bad: list[tuple[Any, Any]] = []
        for key, blob, checksum in rows:
            if not (
                isinstance(key, str)
                and key in positions
                and isinstance(blob, bytes)
                and isinstance(checksum, bytes)
                and len(blob) == self.dim * 4
                and _sql.checksum(key, blob) == checksum
            ):  # a damaged row: wrong types (flipped record header), wrong key, length or sum
                bad.append((key, checksum))
                continue
            vec = np.frombuffer(blob, dtype=_DTYPE)
            for i in positions[key]:
                out[i] = vec
                found[i] = True
        if bad:
            self.corrupt_entries += len(bad)
            logger.warning(
                "%d cached embedding(s) in %s failed their checksum (first key %s); they are "
                "ignored and will be recomputed.",
                len(bad),
                self.path,
                bad[0][0],
            )
            self._run(lambda conn: _sql.delete_checked(conn, bad), default=None)
        return found, out

    def put_many(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        """Store ``vectors`` (float32-convertible, shape (n_keys, dim)) under ``keys`` atomically.

        Existing entries with the same key are replaced (so a corrupted entry is healed).
        """
        keys = list(keys)
        vectors = np.asarray(vectors)
        if vectors.ndim != 2 or vectors.shape != (len(keys), self.dim):
            raise InvalidParameterError(
                f"put_many needs vectors of shape (n_keys, dim) = ({len(keys)}, {self.dim}). "
                f"Got shape {vectors.shape}."
            )
        if not keys:
            return
        data = np.ascontiguousarray(vectors, dtype=_DTYPE)
        rows = []
        for key, row in zip(keys, data, strict=True):
            blob = row.tobytes()
            rows.append((key, blob, _sql.checksum(key, blob)))
        self._run(lambda conn: _sql.insert_checked(conn, rows), default=None, retry_fresh=True)

    def __len__(self) -> int:
        """Number of entries stored (including any not yet checked)."""
        return self._run(
            lambda conn: conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0], default=0
        )

    def close(self) -> None:
        """Close this process's connection (a later call reopens it)."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    def delete(self) -> None:
        """Remove this encoder's database file (and its WAL files) from disk."""
        with self._lock:
            self.close()
            for p in self._files():
                p.unlink(missing_ok=True)

    # -- connection management --------------------------------------------------------------

    def _files(self) -> list[Path]:
        return [self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")]

    def _connection(self) -> sqlite3.Connection:
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        self._conn = None  # a connection inherited through fork must not be used (or closed)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._ino = _inode(self.path)
        if not self._header_ok():
            self._quarantine("its header is not an SQLite header")
        conn = sqlite3.connect(
            self.path,
            timeout=_BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
        self._ino = _inode(self.path)  # the file this connection reads, for _quarantine
        try:
            self._init_schema(conn)
        except BaseException:
            conn.close()
            raise
        self._conn, self._pid = conn, os.getpid()
        return conn

    def _header_ok(self) -> bool:
        """False when the file exists, is not empty and does not start like an SQLite database."""
        try:
            with open(self.path, "rb") as f:
                head = f.read(len(_SQLITE_HEADER))
        except FileNotFoundError:
            return True
        return head == b"" or head == _SQLITE_HEADER

    def _init_schema(self, conn: sqlite3.Connection) -> None:
        conn.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        # a 512-d float32 row is ~2.1 KB: with 4 KB pages only one row fits per page (half the
        # file wasted); 16 KB pages hold seven. Only takes effect when the file is created.
        conn.execute(f"PRAGMA page_size={_PAGE_SIZE}")
        for attempt in range(100):  # switching to WAL can return BUSY without waiting
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == 99:
                    raise
                time.sleep(0.05)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS entries "
                "(key TEXT PRIMARY KEY, vec BLOB NOT NULL, checksum BLOB NOT NULL)"
            )
            conn.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT)")
            wanted = {
                "schema": _SCHEMA_VERSION,
                "fingerprint": self.fingerprint,
                "dim": str(self.dim),
            }
            conn.executemany("INSERT OR IGNORE INTO meta VALUES (?, ?)", sorted(wanted.items()))
            have = dict(conn.execute("SELECT name, value FROM meta").fetchall())
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        found = str(have.get("schema", ""))
        if found.isdigit() and int(found) > int(_SCHEMA_VERSION):
            raise CacheError(
                f"The embedding store {self.path} was written by a newer zsvl (store schema "
                f"{found}, this zsvl reads {_SCHEMA_VERSION}). Upgrade zsvl, or set ZSVL_HOME to "
                f"another folder to keep both."
            )
        stored_dim = str(have.get("dim", ""))
        if stored_dim.isdigit() and stored_dim != wanted["dim"] and stored_dim != "0":
            raise CacheError(
                f"The embedding store {self.path} was written for dim={stored_dim!r}, but this "
                f"encoder has dim={wanted['dim']!r} under the same fingerprint. The fingerprint "
                f"must cover everything that changes the embeddings; delete the file to start "
                f"afresh."
            )
        for name, value in wanted.items():
            if have.get(name) != value:  # the file name hashes the fingerprint: the meta is damaged
                raise _sql.DamagedStore(
                    f"its meta table says {name}={have.get(name)!r} where {value!r} was expected"
                )

    def _quarantine(self, why: str) -> None:
        """Move the damaged database (and its WAL files) aside and forget the connection.

        Nothing is moved when the file at ``path`` is no longer the one found damaged (another
        process already moved it aside and started a new one).
        """
        if self._conn is not None and self._pid == os.getpid():
            try:
                self._conn.close()
            except sqlite3.Error:
                pass
        self._conn = None
        if _inode(self.path) != self._ino:
            logger.info("%s was already replaced by another process (%s)", self.path, why)
            return
        self.corrupt_files += 1
        stamp = f"corrupt-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        moved = Path(f"{self.path}.{stamp}")
        for p in self._files():
            try:
                os.replace(p, Path(f"{moved}{p.name[len(self.path.name) :]}"))
            except FileNotFoundError:
                pass  # another process moved it first, or it never existed
        logger.warning(
            "The embedding cache %s is corrupt (%s); moved it to %s and starting a new one. "
            "Embeddings will be recomputed.",
            self.path,
            why,
            moved,
        )

    def _run(
        self,
        op: Callable[[sqlite3.Connection], T],
        *,
        default: T,
        retry_fresh: bool = False,
    ) -> T:
        """Run ``op`` on the connection; on file corruption move the file aside and either
        return ``default`` (reads: everything is a miss) or retry once on a fresh file."""
        with self._lock:
            try:
                return op(self._connection())
            except (sqlite3.DatabaseError, UnicodeDecodeError, _sql.DamagedStore) as exc:
                if not isinstance(exc, _sql.DamagedStore) and not _sql.is_corruption(exc):
                    raise CacheError(
                        f"The embedding cache {self.path} could not be used: {exc}. Check that "
                        f"the folder is writable and the disk not full, set ZSVL_HOME to "
                        f"another folder, or set ZSVL_NO_CACHE=1 to run without the cache."
                    ) from exc
                self._quarantine(f"{type(exc).__name__}: {exc}")
            if not retry_fresh:
                return default
            return op(self._connection())
