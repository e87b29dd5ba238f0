"""Issue 11.4: a damaged index.faiss of unchanged size never loads or searches silently.

Before the fix, 40 flipped bytes changed most top-10 ids and produced "cosine" scores of 3.7e23:
loading only compared file sizes. Now loading checks checksums where cheap (the whole file up to
64 MiB in all, the header and list sizes of a larger index file), and search refuses a score
outside [-1, 1] or an id the index does not hold.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from shard_data import centres, mixture, write_encoded  # noqa: E402

from zsvl.errors import IndexFormatError  # noqa: E402
from zsvl.index import CaptionIndex, index_info, storage  # noqa: E402
from zsvl.index.build import build_from_shards  # noqa: E402

N, DIM = 4000, 16


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    return mixture(N, DIM, centres(60, DIM), seed=3)


@pytest.fixture(scope="module")
def built(tmp_path_factory, vectors) -> Path:
    out = write_encoded(tmp_path_factory.mktemp("damage") / "ix", vectors, shard=1000)
    build_from_shards(out, factory="IVF32,Flat", tune_queries=200)
    return out


@pytest.fixture
def copy(tmp_path, built) -> Path:
    return Path(shutil.copytree(built, tmp_path / "copy"))


def _payload_start(root: Path) -> int:
    return storage.read_manifest(root)["files"][storage.INDEX_FILE]["head_bytes"]


def _flip(path: Path, positions, seed: int = 0) -> None:
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(seed)
    for at in positions:
        data[int(at)] ^= int(rng.integers(1, 256))
    path.write_bytes(bytes(data))


def test_forty_flipped_bytes_are_refused_on_load(copy, vectors) -> None:
    path = copy / storage.INDEX_FILE
    size = path.stat().st_size
    _flip(path, np.random.default_rng(40).integers(0, size, 40))
    assert path.stat().st_size == size
    with pytest.raises(IndexFormatError, match="index.faiss does not match its checksum"):
        CaptionIndex.load(copy)  # default verify="auto": a small index gets a whole checksum
    with pytest.raises(IndexFormatError, match="index.faiss does not match its checksum"):
        index_info(copy)


def test_large_index_gets_its_header_and_list_sizes_checked(tmp_path, vectors, monkeypatch):
    monkeypatch.setattr(storage, "_MIN_HEAD", 0)  # a small file with a large file's layout
    copy = write_encoded(tmp_path / "ix", vectors, shard=1000)
    build_from_shards(copy, factory="IVF32,Flat", tune_queries=200)
    monkeypatch.setattr(storage, "AUTO_CHECKSUM_BYTES", 0)  # as if the file were huge
    start = _payload_start(copy)
    assert 0 < start < (copy / storage.INDEX_FILE).stat().st_size
    assert CaptionIndex.load(copy).verified == "auto (sizes, partial checksums)"
    _flip(copy / storage.INDEX_FILE, [start - 9])  # inside the last list sizes
    with pytest.raises(IndexFormatError, match="header or list sizes of index.faiss"):
        CaptionIndex.load(copy)


def _set_float(path: Path, vector: np.ndarray, value: float) -> None:
    """Overwrite the largest component of a stored float32 vector in the index file (same
    size), so that the vector's own query scores ``value`` times that component."""
    data = bytearray(path.read_bytes())
    raw = vector.astype("<f4").tobytes()
    at = data.find(raw)
    assert at >= 0 and data.find(raw, at + 1) < 0
    j = int(np.argmax(vector))
    data[at + 4 * j : at + 4 * j + 4] = np.float32(value).tobytes()
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("value", [3.7e23, 50.0])
def test_damaged_codes_give_an_error_not_a_score(copy, vectors, value) -> None:
    stored = np.load(copy / "embeddings" / "emb-00000.npy").astype(np.float32)
    _set_float(copy / storage.INDEX_FILE, stored[7], value)
    index = CaptionIndex.load(copy, verify="none")  # damage the load checks would catch
    with pytest.raises(IndexFormatError, match="returned a score of .* for unit vectors"):
        index.search(stored[7:8], 10)
    with pytest.raises(IndexFormatError, match="checked at load: none"):
        index.search(stored[7:8], 10, dedupe=0.95)


def test_damaged_ids_give_an_error(copy) -> None:
    path = copy / storage.INDEX_FILE
    data = bytearray(path.read_bytes())
    raw = np.int64(1234).tobytes()  # ids are int64 after each list's codes
    at = data.find(raw)
    assert at >= 0 and data.find(raw, at + 1) < 0
    data[at + 6] = 0x40  # a huge id
    path.write_bytes(bytes(data))
    index = CaptionIndex.load(copy, verify="none")
    stored = np.load(copy / "embeddings" / "emb-00001.npy").astype(np.float32)
    with pytest.raises(IndexFormatError, match="returned the id .* holds 4000 captions"):
        index.search(stored[234:235], 5)


def test_intact_scores_stay_cosines(built, vectors) -> None:
    index = CaptionIndex.load(built)
    res = index.search(mixture(200, DIM, centres(60, DIM), seed=9), 20)
    assert np.all(np.abs(res.scores) <= 1 + 1e-3)
    assert index.verified == "auto (all checksums)"


@pytest.mark.parametrize("factory", ["IVF16,SQ8", "IVF16,PQ4"])
def test_compressed_codes_stay_within_the_tolerance(tmp_path, vectors, factory) -> None:
    """SQ8 / PQ reconstructions sit a little off the unit sphere: the margin must allow them."""
    from zsvl.index.search import SCORE_TOLERANCE

    out = write_encoded(tmp_path / "ix", vectors, shard=1000)
    build_from_shards(out, factory=factory, tune_queries=100)
    index = CaptionIndex.load(out)
    queries = mixture(500, DIM, centres(60, DIM), seed=10)
    scores, _ = index.index.search(queries, 50)
    worst = float(np.abs(scores).max())
    assert worst <= 1 + SCORE_TOLERANCE["compressed"] / 2, worst  # half the margin to spare
    index.search(queries, 50)  # no error
