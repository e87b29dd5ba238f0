"""Reading a caption corpus in independent ranges, for a cluster to read it in parallel.

:func:`read_range` reads the records of one byte range of an uncompressed txt/JSONL/CSV/TSV file
(the lines that start in it; the line crossing its end is read to its end) or of a run of Parquet
row groups, with the reader and cleaning code of :meth:`CaptionCorpus.iter_blocks`, and returns
the kept captions with their record numbers (counted from the range's first record), dedupe
hashes and drop counts, so whoever merges the ranges in order gets the sequential result
(:mod:`zsvl.distributed.ranges`). :func:`range_context` is what every range needs from the file's
start (the JSONL field guessed from the first object, the CSV/TSV header).
"""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from zsvl.data.captions import (
    CaptionCorpus,
    ReadStats,
    _guess_column,
    _open_binary,
    _universal_lines,
    dedupe_key,
)
from zsvl.errors import InvalidParameterError

__all__ = ["RangeRead", "range_context", "read_range"]


@dataclass
class RangeRead:
    """What one byte range (text formats) or run of row groups (Parquet) of a corpus holds,
    cleaned but not deduplicated; see :func:`read_range`.

    captions : list of str, length n, the kept captions in file order.
    records : int64 array of shape (n,), record numbers counted from the range's first record.
    source_ids : list of str of length n ("" without an ``id_column``).
    keys : uint64 array of shape (n,), each caption's dedupe hash (None unless ``dedupe``).
    stats : what was dropped in the range (``kept`` and ``duplicates`` stay 0).
    lines : records the range consumed (text lines or Parquet rows), the next range's offset.
    first, stop : the byte where the range's first line starts and where its reading stopped
        (CSV reads through a quoted field that crosses the end); row-group numbers for Parquet.
    """

    captions: list[str]
    records: np.ndarray
    source_ids: list[str]
    keys: np.ndarray | None
    stats: ReadStats
    lines: int
    first: int
    stop: int


class _Span:
    """The lines of a byte range ``[start, end)``: those whose first byte lies in it. A partial
    first line (and the ``\n`` of a ``\r\n`` cut in two) belongs to the range before; the line
    that crosses ``end`` is read to its end. With ``rows`` (CSV), reading past ``end`` goes on
    until the caller marks a row boundary (``row_start``), so a quoted field is never cut."""

    def __init__(self, start: int, end: int, rows: bool) -> None:
        self.start, self.end, self.rows = start, end, rows
        self.first = self.pos = start
        self.row_start = True
        self.count = 0  # lines yielded

    def lines(self, raw: IO[bytes]) -> Iterator[bytes]:
        raw.seek(max(self.start - 1, 0))
        prev = raw.read(1) if self.start > 0 else b"\n"
        skip = prev not in (b"\n", b"\r")
        for line in _universal_lines(raw):
            if skip or (prev == b"\r" and line == b"\n" and self.pos == self.start):
                skip = False
                self.first = self.pos = self.pos + len(line)
                continue
            skip = False
            if self.pos >= self.end and self.row_start:
                return
            self.pos += len(line)
            self.count += 1
            if self.rows:
                self.row_start = False
            yield line


def range_context(corpus: CaptionCorpus) -> dict[str, Any]:
    """What every range needs from the file's start: the JSONL caption field (the first
    object decides it, as in a sequential read) or the CSV/TSV header row."""
    if corpus.format not in ("jsonl", "csv", "tsv") or (corpus.format == "jsonl" and corpus.column):
        return {}
    scratch = dataclasses.replace(corpus)
    with _open_binary(Path(scratch.path)) as raw:
        lines = scratch._decoded_lines(raw)
        if corpus.format == "jsonl":
            for _, line in lines:
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if isinstance(obj, dict):
                    return {"column": _guess_column(obj.keys(), corpus.path)}
            return {}
        delimiter = "\t" if corpus.format == "tsv" else ","
        return {"header": next(csv.reader((t for _, t in lines), delimiter=delimiter), None)}


def read_range(corpus: CaptionCorpus, start: int, end: int, context: dict[str, Any]) -> RangeRead:
    """The records of bytes ``[start, end)`` (row groups for Parquet), cleaned with the same
    code as :meth:`CaptionCorpus.iter_blocks` but not deduplicated: each caption comes with its dedupe hash
    so whoever merges the ranges in order drops the same duplicates. ``context`` is
    :func:`range_context`'s. Not for gzip'd files (they cannot be cut)."""
    if Path(corpus.path).name.lower().endswith(".gz"):
        raise InvalidParameterError(f"{corpus.path}: a gzip'd corpus cannot be read in ranges.")
    part = dataclasses.replace(corpus, dedupe=False, column=context.get("column", corpus.column))
    span = _Span(start, end, rows=corpus.format in ("csv", "tsv"))
    header = context.get("header") if start > 0 else None
    groups = range(start, end) if corpus.format == "parquet" else None
    caps: list[str] = []
    recs: list[int] = []
    srcs: list[str] = []
    seen: set[int] = set()
    records = part._records(span, header, groups)
    if start > 0 and corpus.format in ("csv", "tsv") and header is None:
        records = iter(())  # no header in the whole file: its lines only count
        with _open_binary(Path(corpus.path)) as raw:
            for _ in part._decoded_lines(raw, span):
                pass
    for record, text, source_id in records:
        caption = part._clean(text, seen)
        if caption is not None:
            caps.append(caption)
            recs.append(record)
            srcs.append(source_id)
    keys = np.array([dedupe_key(c) for c in caps], dtype=np.uint64) if corpus.dedupe else None
    lines = span.count
    if corpus.format == "parquet":
        lines, span.first, span.pos = part.stats.records, start, end
    return RangeRead(
        caps,
        np.asarray(recs, dtype=np.int64),
        srcs,
        keys,
        part.stats,
        lines,
        span.first,
        span.pos,
    )
