"""Loading refuses what does not match: encoder, truncated files, metadata counts, checksums."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from caption_fakes import HashEncoder, TableEncoder  # noqa: E402

from zsvl.errors import IndexFormatError, IndexMismatchError  # noqa: E402
from zsvl.index import CaptionIndex, index_info  # noqa: E402


@pytest.fixture
def copy(tmp_path: Path, flat_index: CaptionIndex) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(flat_index.root, dst)
    return dst


def test_loads_with_the_matching_encoder(copy: Path, table_encoder) -> None:
    index = CaptionIndex.load(copy, table_encoder, verify="checksum")
    assert len(index) == 3000 and index.dim == 32
    assert "Flat" in repr(index)


def test_encoder_mismatch_names_both_models(copy: Path, vectors) -> None:
    with pytest.raises(
        IndexMismatchError,
        match=r"built with .*dim 32.* query encoder is "
        r"hash-encoder\|dim=16 \(dim 16\); rebuild",
    ):
        CaptionIndex.load(copy, HashEncoder(16))
    same_dim = TableEncoder(vectors, name="other")
    with pytest.raises(IndexMismatchError, match="other-encoder"):
        CaptionIndex.load(copy, same_dim)


def test_truncated_index_file(copy: Path, table_encoder) -> None:
    path = copy / "index.faiss"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(
        IndexFormatError, match="index.faiss has 1000 bytes but the manifest records .* truncated"
    ):
        CaptionIndex.load(copy, table_encoder)
    with pytest.raises(IndexFormatError, match="could not be read by FAISS"):
        CaptionIndex.load(copy, table_encoder, verify="none")


def test_altered_file_fails_the_checksum(copy: Path, table_encoder) -> None:
    path = copy / "embeddings" / "emb-00001.npy"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    CaptionIndex.load(copy, table_encoder, verify="size")  # same size: the size check passes
    with pytest.raises(IndexFormatError, match="emb-00001.npy does not match its checksum"):
        CaptionIndex.load(copy, table_encoder, verify="checksum")
    with pytest.raises(IndexFormatError, match="emb-00001.npy does not match its checksum"):
        CaptionIndex.load(copy, table_encoder)  # a small index: "auto" checksums every file


def test_metadata_count_mismatch(copy: Path, table_encoder) -> None:
    import pyarrow.parquet as pq

    table = pq.read_table(copy / "metadata.parquet").slice(0, 2999)
    pq.write_table(table, copy / "metadata.parquet")
    with pytest.raises(IndexMismatchError, match="has 2999 rows but the index holds 3000"):
        CaptionIndex.load(copy, table_encoder, verify="none")


def test_index_count_mismatch(copy: Path, table_encoder) -> None:
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["count"] = 2500
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(
        IndexMismatchError, match="holds 3000 vectors of dim 32 but the manifest records 2500"
    ):
        CaptionIndex.load(copy, table_encoder)


def test_missing_files_and_foreign_directories(tmp_path: Path, copy: Path) -> None:
    (copy / "metadata.parquet").unlink()
    with pytest.raises(IndexFormatError, match="metadata.parquet is missing"):
        CaptionIndex.load(copy)
    with pytest.raises(IndexFormatError, match="does not exist"):
        CaptionIndex.load(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(IndexFormatError, match="not a finished zsvl caption index"):
        CaptionIndex.load(tmp_path / "empty")
    (copy / "manifest.json").write_text("{broken")
    with pytest.raises(IndexFormatError, match="not valid JSON"):
        CaptionIndex.load(copy)


def test_newer_format_version_is_refused(copy: Path) -> None:
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["format_version"] = 99
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexFormatError, match="format version 99"):
        CaptionIndex.load(copy)


def test_memory_mapped_and_in_memory_agree(copy: Path, table_encoder, queries) -> None:
    a = CaptionIndex.load(copy, table_encoder, mmap=True).search(queries, 5)
    b = CaptionIndex.load(copy, table_encoder, mmap=False).search(queries, 5)
    np.testing.assert_array_equal(a.ids, b.ids)


def test_index_info(copy: Path) -> None:
    info = index_info(copy, verify="checksum")
    assert info["count"] == 3000 and info["factory"] == "Flat"
    assert info["recall@10"] == 1.0 and info["embedding_bytes"] > 3000 * 32 * 2
