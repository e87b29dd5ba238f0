"""EmbeddingStore: round trips, partitions, corruption handling and two writing processes."""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from zsvl.embed.keys import text_key
from zsvl.embed.store import EmbeddingStore, store_path
from zsvl.errors import CacheError, InvalidParameterError

from .helpers import seeded_unit_vector

DIM = 8


def _keys_and_vectors(n: int, start: int = 0) -> tuple[list[str], np.ndarray]:
    keys = [text_key("fp", f"text {i}") for i in range(start, start + n)]
    vecs = np.stack([seeded_unit_vector(k.encode(), DIM) for k in keys])
    return keys, vecs


def test_round_trip_in_input_order_with_misses_and_duplicates(zsvl_home: Path) -> None:
    store = EmbeddingStore("fp", dim=DIM)
    keys, vecs = _keys_and_vectors(5)
    store.put_many(keys[:3], vecs[:3])
    ask = [keys[2], keys[4], keys[0], keys[2], keys[3]]
    found, got = store.get_many(ask)
    assert found.tolist() == [True, False, True, True, False]
    assert got.dtype == np.float32 and got.shape == (5, DIM)
    np.testing.assert_array_equal(got[[0, 2, 3]], vecs[[2, 0, 2]])
    np.testing.assert_array_equal(got[[1, 4]], 0)
    assert len(store) == 3
    assert store.path.parent == zsvl_home / "embeddings"


def test_empty_batches_and_float64_input() -> None:
    store = EmbeddingStore("fp", dim=DIM)
    found, got = store.get_many([])
    assert found.shape == (0,) and got.shape == (0, DIM)
    store.put_many([], np.zeros((0, DIM)))
    keys, vecs = _keys_and_vectors(2)
    store.put_many(keys, vecs.astype(np.float64))
    np.testing.assert_array_equal(store.get_many(keys)[1], vecs)


def test_large_batch_spans_many_queries() -> None:
    store = EmbeddingStore("fp", dim=DIM)
    keys, vecs = _keys_and_vectors(2_345)
    store.put_many(keys, vecs)
    found, got = store.get_many(keys[::-1])
    assert found.all()
    np.testing.assert_array_equal(got, vecs[::-1])


def test_put_many_validates_shape() -> None:
    store = EmbeddingStore("fp", dim=DIM)
    keys, vecs = _keys_and_vectors(3)
    with pytest.raises(InvalidParameterError, match=r"shape \(n_keys, dim\) = \(3, 8\)"):
        store.put_many(keys, vecs[:, :4])
    with pytest.raises(InvalidParameterError, match="'dim'.*int > 0"):
        EmbeddingStore("fp", dim=0)


def test_partitions_per_fingerprint_and_delete() -> None:
    a, b = EmbeddingStore("model-a|fp32", dim=DIM), EmbeddingStore("model-a|fp16", dim=DIM)
    assert a.path != b.path and a.path.name.startswith("model-a_fp32-")
    keys, vecs = _keys_and_vectors(3)
    a.put_many(keys, vecs)
    assert b.get_many(keys)[0].sum() == 0
    b.put_many(keys, -vecs)
    a.delete()
    assert not a.path.exists() and b.path.exists()
    assert a.get_many(keys)[0].sum() == 0  # a fresh, empty store
    np.testing.assert_array_equal(b.get_many(keys)[1], -vecs)


def test_store_refuses_a_file_written_for_another_dimension() -> None:
    EmbeddingStore("fp", dim=DIM).put_many(*_keys_and_vectors(1))
    with pytest.raises(CacheError, match="written for dim='8'.*dim='4'"):
        EmbeddingStore("fp", dim=4).get_many(["k"])


def test_store_path_is_readable_and_collision_free(tmp_path: Path) -> None:
    p = store_path("ViT-B-32|openai|pp-abc|fp32", tmp_path)
    assert p.parent == tmp_path and p.name.startswith("ViT-B-32_openai_pp-abc_fp32-")
    assert store_path("a/b", tmp_path) != store_path("a_b", tmp_path)


def _flip_stored_blob(path: Path, blob: bytes) -> None:
    """Flip one byte inside ``blob`` where it sits in the database file itself."""
    data = bytearray(path.read_bytes())
    at = data.find(blob)
    assert at >= 0, "vector bytes not found in the database file"
    data[at + len(blob) // 2] ^= 0x5A
    path.write_bytes(bytes(data))


def test_flipped_bytes_in_an_entry_are_detected_and_healed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = EmbeddingStore("fp", dim=DIM)
    keys, vecs = _keys_and_vectors(4)
    store.put_many(keys, vecs)
    store.close()  # checkpoint the WAL into the main file
    _flip_stored_blob(store.path, vecs[1].astype("<f4").tobytes())

    with caplog.at_level(logging.WARNING, logger="zsvl.embed.store"):
        found, got = store.get_many(keys)
    assert found.tolist() == [True, False, True, True]
    np.testing.assert_array_equal(got[1], 0)
    assert "failed their checksum" in caplog.text and store.corrupt_entries == 1
    assert len(store) == 3  # the bad row is gone, not served again

    store.put_many(keys[1:2], vecs[1:2])
    found, got = store.get_many(keys)
    assert found.all()
    np.testing.assert_array_equal(got, vecs)


def test_corruption_behind_sqlite_is_caught_by_checksum_on_update(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A blob changed without its checksum (e.g. by another tool) is never trusted."""
    store = EmbeddingStore("fp", dim=DIM)
    keys, vecs = _keys_and_vectors(2)
    store.put_many(keys, vecs)
    store.close()
    with sqlite3.connect(store.path) as conn:
        conn.execute("UPDATE entries SET vec = ? WHERE key = ?", (vecs[1].tobytes()[:-4], keys[0]))
    with caplog.at_level(logging.WARNING):
        found, _ = store.get_many(keys)
    assert found.tolist() == [False, True]


def test_whole_file_garbage_is_moved_aside_and_the_store_keeps_working(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = EmbeddingStore("fp", dim=DIM)
    keys, vecs = _keys_and_vectors(50)
    store.put_many(keys, vecs)
    store.close()
    size = store.path.stat().st_size
    store.path.write_bytes(np.random.default_rng(0).bytes(size))

    with caplog.at_level(logging.WARNING, logger="zsvl.embed.store"):
        found, _ = store.get_many(keys)
    assert not found.any()
    assert "is corrupt" in caplog.text and store.corrupt_files == 1
    moved = list(store.path.parent.glob(f"{store.path.name}.corrupt-*"))
    assert len(moved) == 1 and moved[0].stat().st_size == size

    store.put_many(keys, vecs)
    found, got = store.get_many(keys)
    assert found.all()
    np.testing.assert_array_equal(got, vecs)


def test_garbage_pages_after_a_valid_header_are_survived(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Damage SQLite reports as 'malformed' moves the file aside; damage it cannot see is
    caught by the entry checksums. Either way no wrong vector comes back."""
    store = EmbeddingStore("fp", dim=DIM)
    keys, vecs = _keys_and_vectors(400)
    store.put_many(keys, vecs)
    store.close()
    data = bytearray(store.path.read_bytes())
    data[100:] = np.random.default_rng(1).bytes(len(data) - 100)
    store.path.write_bytes(bytes(data))

    with caplog.at_level(logging.WARNING, logger="zsvl.embed.store"):
        found, got = store.get_many(keys)
        np.testing.assert_array_equal(got[found], vecs[found])
        store.put_many(keys, vecs)
        found, got = store.get_many(keys)
    assert found.all()
    np.testing.assert_array_equal(got, vecs)
    assert store.corrupt_files + store.corrupt_entries > 0


def test_a_file_already_replaced_by_another_process_is_not_moved_again(
    zsvl_home: Path,
) -> None:
    """Two processes noticing the same damage: only the first moves the file aside."""
    keys, vecs = _keys_and_vectors(3)
    late = EmbeddingStore("fp", dim=DIM)
    late.put_many(keys, vecs)  # `late` now has the original file open
    os.replace(late.path, late.path.with_name("elsewhere.sqlite"))  # the first one moved it
    fresh = EmbeddingStore("fp", dim=DIM)
    fresh.put_many(keys, -vecs)  # ... and started a new file

    late._quarantine("simulated: damage seen on the old file")
    assert late.corrupt_files == 0
    assert not list(late.path.parent.glob("*.corrupt-*"))
    found, got = late.get_many(keys)  # reconnected to the new file
    assert found.all()
    np.testing.assert_array_equal(got, -vecs)


def _writer(root: str, start: int, n: int, batch: int, barrier: mp.synchronize.Barrier) -> None:
    """Child process: write keys [start, start+n) in small batches, reading as it goes."""
    store = EmbeddingStore("fp", dim=DIM, root=root)
    barrier.wait()
    for s in range(start, start + n, batch):
        keys, vecs = _keys_and_vectors(min(batch, start + n - s), s)
        store.put_many(keys, vecs)
        found, got = store.get_many(keys)
        if not found.all() or not np.array_equal(got, vecs):
            raise SystemExit(3)
    store.close()


def test_two_processes_writing_overlapping_keys(tmp_path: Path) -> None:
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
    if ctx is None:
        pytest.skip("needs the fork start method")
    root = str(tmp_path / "shared")
    barrier = ctx.Barrier(2)
    procs = [
        ctx.Process(target=_writer, args=(root, 0, 1_500, 25, barrier)),
        ctx.Process(target=_writer, args=(root, 500, 1_500, 40, barrier)),
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]

    store = EmbeddingStore("fp", dim=DIM, root=root)
    keys, vecs = _keys_and_vectors(2_000)
    found, got = store.get_many(keys)
    assert found.all() and len(store) == 2_000
    np.testing.assert_array_equal(got, vecs)
