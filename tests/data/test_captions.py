"""Caption corpus readers: every format, gzip, blocks, explicit ids, bad records counted."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from zsvl.data.captions import CaptionCorpus, detect_format, read_captions
from zsvl.errors import InvalidParameterError

CAPS = ["a red star.", "a blue circle", "two green squares", "a photo of a dog", "a cat"]


def _txt(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def _jsonl(path: Path, caps: list[str], key: str = "caption") -> Path:
    path.write_text(
        "".join(json.dumps({key: c, "id": f"img{i}"}) + "\n" for i, c in enumerate(caps)),
        encoding="utf-8",
    )
    return path


def _csv(path: Path, caps: list[str], delimiter: str = ",") -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter=delimiter)
        w.writerow(["id", "text"])
        for i, c in enumerate(caps):
            w.writerow([f"img{i}", c])
    return path


def _parquet(path: Path, caps: list[str]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"caption": caps, "id": [f"img{i}" for i in range(len(caps))]}), path)
    return path


def _gzip(path: Path) -> Path:
    gz = path.with_name(path.name + ".gz")
    gz.write_bytes(gzip.compress(path.read_bytes()))
    return gz


_FORMATS = [
    (_txt, "c.txt", {}),
    (_jsonl, "c.jsonl", {}),
    (_csv, "c.csv", {"column": "text"}),
    (lambda p, c: _csv(p, c, "\t"), "c.tsv", {"column": "text"}),
]


@pytest.mark.parametrize(
    "maker,name,kwargs,gz",
    [
        *[(*f, False) for f in _FORMATS],
        *[(*f, True) for f in _FORMATS],
        (_parquet, "c.parquet", {}, False),  # Parquet compresses internally; no .parquet.gz
    ],
)
def test_every_format_plain_and_gzip(tmp_path: Path, maker, name, kwargs, gz) -> None:
    path = maker(tmp_path / name, CAPS)
    path = _gzip(path) if gz else path
    corpus = CaptionCorpus(path, **kwargs)
    assert list(corpus) == CAPS
    assert corpus.stats.kept == corpus.stats.records == len(CAPS)


def test_blocks_carry_dense_ids_records_and_source_ids(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "c.jsonl", ["x", "", "y", "z", "w"])
    blocks = list(CaptionCorpus(path, id_column="id").iter_blocks(2))
    assert [b.captions for b in blocks] == [["x", "y"], ["z", "w"]]
    assert np.concatenate([b.ids for b in blocks]).tolist() == [0, 1, 2, 3]
    assert np.concatenate([b.records for b in blocks]).tolist() == [0, 2, 3, 4]
    assert blocks[0].source_ids == ["img0", "img2"]


def test_bad_lines_are_counted_not_raised(tmp_path: Path, caplog) -> None:
    path = tmp_path / "bad.jsonl"
    lines = [
        b'{"caption": "good one"}',
        b"",
        b"   ",
        b"{not json",
        b'{"other": 1}',
        b'{"caption": 5}',
        b'{"caption": "caf\xe9"}',  # latin-1 byte: not UTF-8
        b'{"caption": "' + b"x" * 50 + b'"}',
        b'{"caption": "good one"}',
        b'["a list"]',
        b'{"caption": null}',
        b'{"caption": "  "}',
        b'{"caption": "last"}',
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    corpus = CaptionCorpus(path, max_chars=40, dedupe=True)
    assert list(corpus) == ["good one", "last"]
    s = corpus.stats
    assert (
        s.records,
        s.kept,
        s.empty,
        s.malformed,
        s.missing,
        s.undecodable,
        s.too_long,
        s.duplicates,
    ) == (13, 2, 3, 3, 2, 1, 1, 1)
    assert s.dropped == 11
    assert "kept 2 of 13 records" in caplog.text


def test_text_file_with_undecodable_bytes_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "c.txt"
    path.write_bytes(b"one\n\n\xff\xfe broken\r\ntwo\r\n   \nthree")
    corpus = CaptionCorpus(path)
    assert list(corpus) == ["one", "two", "three"]
    assert (corpus.stats.empty, corpus.stats.undecodable, corpus.stats.records) == (2, 1, 6)


def test_normalize_and_dedupe(tmp_path: Path) -> None:
    path = _txt(tmp_path / "c.txt", ["a  red\tstar", "a red star", "ｆｕｌｌ width", "full width"])
    assert read_captions(path) == ["a  red\tstar", "a red star", "ｆｕｌｌ width", "full width"]
    assert read_captions(path, normalize=True, dedupe=True) == ["a red star", "full width"]


def test_csv_short_rows_are_malformed(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text('id,text\n1,"a quoted, caption"\n2\n3,ok\n', encoding="utf-8")
    corpus = CaptionCorpus(path, column="text")
    assert list(corpus) == ["a quoted, caption", "ok"]
    assert corpus.stats.malformed == 1


def test_streaming_reads_block_by_block(tmp_path: Path) -> None:
    path = _gzip(_txt(tmp_path / "big.txt", [f"caption {i}" for i in range(20_000)]))
    sizes = []
    for block in CaptionCorpus(path).iter_blocks(4096):
        sizes.append(len(block))
    assert sizes == [4096] * 4 + [20_000 - 4 * 4096]


def test_empty_corpus_yields_nothing(tmp_path: Path) -> None:
    path = _txt(tmp_path / "e.txt", ["", "  "])
    corpus = CaptionCorpus(path)
    assert list(corpus.iter_blocks()) == []
    assert corpus.stats.empty == 2


def test_helpful_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterError, match="does not exist"):
        CaptionCorpus(tmp_path / "missing.txt")
    odd = _txt(tmp_path / "c.weird", ["x"])
    with pytest.raises(InvalidParameterError, match="Cannot tell the format"):
        CaptionCorpus(odd)
    assert list(CaptionCorpus(odd, format="txt")) == ["x"]
    with pytest.raises(InvalidParameterError, match="pass column="):
        list(CaptionCorpus(_jsonl(tmp_path / "k.jsonl", ["x"], key="weird")))
    with pytest.raises(InvalidParameterError, match="no column 'nope'"):
        list(CaptionCorpus(_csv(tmp_path / "c.csv", ["x"]), column="nope"))
    with pytest.raises(InvalidParameterError, match="needs column"):
        list(CaptionCorpus(_parquet(tmp_path / "c.parquet", ["x"]), column="nope"))
    with pytest.raises(InvalidParameterError, match="no columns"):
        CaptionCorpus(_txt(tmp_path / "t.txt", ["x"]), column="caption")
    assert detect_format("a/b.TSV.gz") == "tsv"


@pytest.mark.parametrize("ending", ["\r", "\r\n", "\n"], ids=["cr", "crlf", "lf"])
@pytest.mark.parametrize("suffix", [".txt", ".jsonl", ".csv", ".txt.gz"])
def test_every_line_ending_splits_into_records(tmp_path: Path, ending: str, suffix: str) -> None:
    """Issue 11.7: a corpus with lone "\\r" line endings (old Mac) used to be one caption."""
    if suffix == ".jsonl":
        lines = [json.dumps({"caption": c}) for c in CAPS]
    elif suffix == ".csv":
        lines = ["id,text"] + [f"img{i},{c}" for i, c in enumerate(CAPS)]
    else:
        lines = CAPS
    data = ending.join(lines).encode("utf-8")
    path = tmp_path / f"corpus{suffix}"
    path.write_bytes(gzip.compress(data) if suffix.endswith(".gz") else data)
    corpus = CaptionCorpus(path)
    blocks = list(corpus.iter_blocks(2))
    assert [c for b in blocks for c in b.captions] == CAPS
    assert np.concatenate([b.records for b in blocks]).tolist() == list(range(len(CAPS)))
    assert corpus.stats.records == len(CAPS) and corpus.stats.dropped == 0


def test_cr_split_across_read_chunks() -> None:
    import io

    from zsvl.data.captions import _universal_lines

    data = b"one\r\ntwo\rthree\nfour\r\r\nfive"
    for chunk in (1, 2, 3, 4, 7, 1000):
        assert list(_universal_lines(io.BytesIO(data), chunk)) == [
            b"one\r\n",
            b"two\r",
            b"three\n",
            b"four\r",
            b"\r\n",
            b"five",
        ]
