"""Reading a corpus as independent ranges and merging them gives exactly the sequential blocks."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import numpy as np
import pytest

from zsvl.data.caption_ranges import read_range
from zsvl.data.captions import CaptionCorpus
from zsvl.distributed.ranges import plan_ranges, read_in_ranges

WORDS = ["a", "dog", "cat", "red", "photo", "of", "the", "big", "small", "car", "é", "猫"]


def _captions(n: int, seed: int) -> list[str]:
    """Captions with many exact duplicates, blanks, padding and an over-long one."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        kind = rng.random()
        if kind < 0.08:
            out.append("   ")
        elif kind < 0.1:
            out.append("x" * 60)  # over max_chars=50
        else:
            words = rng.choices(WORDS, k=rng.randint(1, 3))
            out.append(("  " if i % 7 == 0 else "") + " ".join(words))
    return out


def _txt(path: Path, newline: bytes, seed: int) -> Path:
    lines = [c.encode() for c in _captions(300, seed)]
    lines[5] = b"\xff\xfe bad bytes"  # undecodable
    path.write_bytes(newline.join(lines) + (newline if seed % 2 else b""))
    return path


def _jsonl(path: Path, seed: int) -> Path:
    rows = []
    for i, c in enumerate(_captions(250, seed)):
        if i % 41 == 3:
            rows.append("{not json")
        elif i % 53 == 4:
            rows.append(json.dumps({"other": c}))  # missing field
        elif i % 61 == 5:
            rows.append("[1, 2]")  # not an object
        elif i % 67 == 6:
            rows.append(json.dumps({"text": 7, "id": i}))  # not a string
        else:
            rows.append(json.dumps({"text": c, "id": i}, ensure_ascii=False))
    path.write_text("\n".join(["", "{bad"] + rows) + "\n", encoding="utf-8")
    return path


def _csv(path: Path, seed: int, multiline: bool) -> Path:
    rows = ["id,caption,extra"]
    for i, c in enumerate(_captions(250, seed)):
        if i % 29 == 0:
            rows.append(f"{i}")  # too short
        elif multiline and i % 23 == 1:
            rows.append(f'{i},"{c}\nsecond line, with comma\r\nthird",x')  # quoted, spans lines
        elif i % 19 == 2:
            rows.append(f'{i},"{c}, quoted ""inner""",y')
        else:
            rows.append(f"{i},{c},z")
    path.write_text("\r\n".join(rows) + "\r\n", encoding="utf-8", newline="")
    return path


def _blocks(corpus: CaptionCorpus, blocks) -> tuple[list, dict]:
    out = [(b.captions, b.ids.tolist(), b.records.tolist(), b.source_ids) for b in blocks]
    return out, corpus.stats.as_dict()


def _check(path: Path, range_sizes=(1, 3, 16, 61, 4096), **options) -> None:
    for dedupe in (False, True):
        for block_size in (1, 13, 100_000):
            seq = CaptionCorpus(path, dedupe=dedupe, max_chars=50, **options)
            expected = _blocks(seq, seq.iter_blocks(block_size))
            assert expected[1]["kept"] > 20
            if dedupe:
                assert expected[1]["duplicates"] > 0
            for range_bytes in range_sizes:
                par = CaptionCorpus(path, dedupe=dedupe, max_chars=50, **options)
                got = _blocks(par, read_in_ranges(par, block_size, range_bytes))
                assert got == expected, (range_bytes, block_size, dedupe)


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
@pytest.mark.parametrize("seed", [0, 1])
def test_txt_ranges_equal_sequential(tmp_path: Path, newline: bytes, seed: int) -> None:
    path = _txt(tmp_path / "c.txt", newline, seed)
    assert len(plan_ranges(CaptionCorpus(path), 7)) > 100  # many cuts inside lines
    _check(path, normalize=bool(seed))


def test_jsonl_ranges_equal_sequential(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "c.jsonl", 2)
    _check(path, id_column="id")  # the field is guessed from the first object, in every range
    _check(path, column="text", range_sizes=(5, 300))


@pytest.mark.parametrize("multiline", [False, True])
def test_csv_ranges_equal_sequential(tmp_path: Path, multiline: bool, caplog) -> None:
    path = _csv(tmp_path / "c.csv", 3, multiline)
    _check(path, id_column="id")
    # a cut inside a quoted multi-line field is detected and the rest re-read from a row start
    assert ("quoted field spans the range boundary" in caplog.text) == multiline
    tsv = tmp_path / "c.tsv"
    tsv.write_text(path.read_text(encoding="utf-8").replace(",", "\t"), encoding="utf-8")
    _check(tsv, column="caption", range_sizes=(3, 100, 999))


def test_parquet_row_group_ranges_equal_sequential(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    caps = _captions(400, 4)
    table = pa.table({"caption": [None if i % 31 == 0 else c for i, c in enumerate(caps)]})
    pq.write_table(table, tmp_path / "c.parquet", row_group_size=37)
    plan = plan_ranges(CaptionCorpus(tmp_path / "c.parquet"), 1)
    assert len(plan) == 11 and plan[0] == (0, 1) and plan[-1] == (10, 11)
    _check(tmp_path / "c.parquet", range_sizes=(1, 500, 1 << 30))


def test_gzip_is_read_sequentially(tmp_path: Path) -> None:
    raw = _txt(tmp_path / "c.txt", b"\n", 0).read_bytes()
    (tmp_path / "c.txt.gz").write_bytes(gzip.compress(raw))
    assert plan_ranges(CaptionCorpus(tmp_path / "c.txt.gz"), 10) is None
    _check(tmp_path / "c.txt.gz", range_sizes=(10,))


def test_range_reader_owns_the_lines_that_start_in_it(tmp_path: Path) -> None:
    """Independent of the merger: each line is read by exactly the range holding its first byte,
    and the record offsets add up to the line count."""
    data = b"ab\r\ncd\rlong line here\n\r\nx"
    path = tmp_path / "c.txt"
    path.write_bytes(data)
    corpus = CaptionCorpus(path)
    starts = [0, 4, 7, 22, 24]  # the first byte of each of the 5 lines
    for cut in range(1, len(data)):
        a = read_range(corpus, 0, cut, {})
        b = read_range(corpus, cut, len(data), {})
        owned = sum(s < cut for s in starts)
        assert a.lines == owned and b.lines == 5 - owned
        assert b.first == (starts + [len(data)])[owned] == a.stop
        assert a.captions + b.captions == ["ab", "cd", "long line here", "x"]
        assert np.array_equal(np.r_[a.records, b.records + a.lines], [0, 1, 2, 4])
