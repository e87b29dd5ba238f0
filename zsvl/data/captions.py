"""Caption corpora, streamed in blocks: plain text, JSONL, CSV/TSV and Parquet, gzip'd or not.

A :class:`CaptionCorpus` describes where the captions are and how to clean them;
``corpus.iter_blocks(block_size)`` yields :class:`CaptionBlock` objects of at most ``block_size``
captions, so memory stays flat whatever the corpus size. Bad records (empty lines, undecodable
bytes, malformed JSON, missing fields, over-long captions) are counted in ``corpus.stats`` and
logged once per kind, never raised. Exact deduplication keeps one 8-byte hash per distinct caption
(about 70 bytes of Python memory per caption, so plan ~7 GB for 100M distinct captions).

Every kept caption gets an explicit, dense ``id`` (0, 1, 2, ... in corpus order, after cleaning
and deduplication); ``record`` is its position among the corpus records (line number for text
formats, row number for Parquet) so an id can always be traced back to the source. Text formats
accept ``\n``, ``\r\n`` and lone ``\r`` line endings (Python's universal newlines).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import logging
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from zsvl.errors import InvalidParameterError

if TYPE_CHECKING:  # pragma: no cover
    from zsvl.data.caption_ranges import _Span

__all__ = [
    "CaptionCorpus",
    "CaptionBlock",
    "ReadStats",
    "FORMATS",
    "detect_format",
    "read_captions",
]

logger = logging.getLogger(__name__)

FORMATS = ("txt", "jsonl", "csv", "tsv", "parquet")
_SUFFIXES = {
    ".txt": "txt",
    ".text": "txt",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_DEFAULT_COLUMNS = ("caption", "text", "sentence", "raw", "TEXT")
_SPACE = re.compile(r"\s+")


@dataclass
class ReadStats:
    """What the reader saw. ``kept`` captions were yielded; every other record is counted once."""

    records: int = 0  # lines (text formats) or rows (Parquet) read
    kept: int = 0  # captions yielded
    empty: int = 0  # blank or whitespace-only captions
    undecodable: int = 0  # lines that are not valid UTF-8
    malformed: int = 0  # JSON that does not parse, CSV rows too short, non-string fields
    missing: int = 0  # records without the caption field (or with null in it)
    too_long: int = 0  # captions longer than ``max_chars`` characters
    duplicates: int = 0  # exact duplicates dropped (with ``dedupe=True``)

    @property
    def dropped(self) -> int:
        return self.records - self.kept

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class CaptionBlock:
    """Up to ``block_size`` consecutive kept captions.

    captions : list of str, length n.
    ids : int64 array of shape (n,), dense caption ids (position among kept captions).
    records : int64 array of shape (n,), position of each caption among the source records.
    source_ids : list of str of length n when the corpus has an ``id_column``, else None.
    """

    captions: list[str]
    ids: np.ndarray
    records: np.ndarray
    source_ids: list[str] | None = None

    def __len__(self) -> int:
        return len(self.captions)


def dedupe_key(text: str) -> int:
    """The 8-byte hash exact deduplication compares (of the cleaned caption)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def detect_format(path: str | Path) -> str:
    """The corpus format from the file name: ``.txt``, ``.jsonl``, ``.csv``, ``.tsv``, ``.parquet``
    (each optionally followed by ``.gz``)."""
    name = Path(path).name.lower()
    stem = name[:-3] if name.endswith(".gz") else name
    suffix = Path(stem).suffix
    if suffix not in _SUFFIXES:
        raise InvalidParameterError(
            f"Cannot tell the format of {str(path)!r} from its name; pass format= one of "
            f"{', '.join(FORMATS)} (gzip is detected from the '.gz' suffix)."
        )
    return _SUFFIXES[suffix]


@dataclass
class CaptionCorpus:
    """A caption corpus on disk and how to read it. Read with :meth:`iter_blocks`.

    Parameters
    ----------
    path : the file.
    format : one of :data:`FORMATS`, or None to detect it from the file name.
    column : the caption field (JSONL key, CSV/TSV header, Parquet column); None tries
        "caption", "text", "sentence", "raw". Text files have no columns.
    id_column : optional field kept as each caption's ``source_id`` (e.g. a COCO image id).
    normalize : NFKC-normalise and collapse runs of whitespace (always stripped).
    dedupe : drop exact duplicates (after normalisation).
    max_chars : captions longer than this are counted in ``stats.too_long`` and skipped.
    """

    path: str | Path
    format: str | None = None
    column: str | None = None
    id_column: str | None = None
    normalize: bool = False
    dedupe: bool = False
    max_chars: int = 1000
    stats: ReadStats = field(default_factory=ReadStats, init=False, repr=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if not self.path.is_file():
            raise InvalidParameterError(f"Caption corpus {str(self.path)!r} does not exist.")
        self.format = self.format or detect_format(self.path)
        if self.format not in FORMATS:
            raise InvalidParameterError(
                f"The 'format' parameter must be one of {', '.join(FORMATS)}. Got {self.format!r}."
            )
        if self.format == "txt" and (self.column or self.id_column):
            raise InvalidParameterError(
                "A plain text corpus has no columns; drop column/id_column."
            )
        if not isinstance(self.max_chars, int) or self.max_chars < 1:
            raise InvalidParameterError(f"max_chars must be an int >= 1. Got {self.max_chars!r}.")

    def settings(self) -> dict[str, Any]:
        """Everything that changes which captions come out, for manifests and resume checks."""
        stat = Path(self.path).stat()
        return {
            "path": str(Path(self.path).resolve()),
            "format": self.format,
            "column": self.column,
            "id_column": self.id_column,
            "normalize": self.normalize,
            "dedupe": self.dedupe,
            "max_chars": self.max_chars,
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
        }

    # -- reading -------------------------------------------------------------------------
    def iter_blocks(self, block_size: int = 8192) -> Iterator[CaptionBlock]:
        """Kept captions in blocks of ``block_size`` (the last may be shorter). Resets ``stats``."""
        if not isinstance(block_size, int) or block_size < 1:
            raise InvalidParameterError(f"block_size must be an int >= 1. Got {block_size!r}.")
        self.stats = ReadStats()
        seen: set[int] = set()
        caps: list[str] = []
        recs: list[int] = []
        srcs: list[str] = []
        next_id = 0
        for record, text, source_id in self._records():
            caption = self._clean(text, seen)
            if caption is None:
                continue
            caps.append(caption)
            recs.append(record)
            srcs.append(source_id)
            if len(caps) == block_size:
                yield self._block(caps, recs, srcs, next_id)
                next_id += len(caps)
                caps, recs, srcs = [], [], []
        if caps:
            yield self._block(caps, recs, srcs, next_id)
        self._report()

    def __iter__(self) -> Iterator[str]:
        for block in self.iter_blocks():
            yield from block.captions

    def _block(self, caps: list[str], recs: list[int], srcs: list[str], start: int) -> CaptionBlock:
        self.stats.kept += len(caps)
        return CaptionBlock(
            captions=caps,
            ids=np.arange(start, start + len(caps), dtype=np.int64),
            records=np.asarray(recs, dtype=np.int64),
            source_ids=srcs if self.id_column else None,
        )

    def _clean(self, text: Any, seen: set[int]) -> str | None:
        """The cleaned caption, or None after counting why it was dropped."""
        if text is None:
            self.stats.missing += 1
            return None
        if not isinstance(text, str):
            self.stats.malformed += 1
            return None
        if self.normalize:
            text = _SPACE.sub(" ", unicodedata.normalize("NFKC", text))
        text = text.strip()
        if not text:
            self.stats.empty += 1
            return None
        if len(text) > self.max_chars:
            self.stats.too_long += 1
            return None
        if self.dedupe:
            key = dedupe_key(text)
            if key in seen:
                self.stats.duplicates += 1
                return None
            seen.add(key)
        return text

    def _records(
        self,
        span: _Span | None = None,
        header: list[str] | None = None,
        groups: range | None = None,
    ) -> Iterator[tuple[int, Any, str]]:
        """(record number, raw caption or None, source id) for every record of the file, or of
        the byte range ``span`` (numbers then count from the range's first record)."""
        if self.format == "parquet":
            yield from self._parquet_records(groups)
            return
        with _open_binary(Path(self.path)) as raw:
            lines = self._decoded_lines(raw, span)
            if self.format == "txt":
                for number, line in lines:
                    yield number, line.rstrip("\r\n"), ""
            elif self.format == "jsonl":
                yield from self._jsonl_records(lines)
            else:
                yield from self._csv_records(lines, span, header)

    def _decoded_lines(
        self, raw: IO[bytes], span: _Span | None = None
    ) -> Iterator[tuple[int, str]]:
        for number, line in enumerate(_universal_lines(raw) if span is None else span.lines(raw)):
            self.stats.records += 1
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError:
                self.stats.undecodable += 1
                continue
            yield number, text

    def _jsonl_records(self, lines: Iterator[tuple[int, str]]) -> Iterator[tuple]:
        """Records of a JSON-lines file; without ``column`` the first object decides the field."""
        column = self.column
        for number, line in lines:
            if not line.strip():
                self.stats.empty += 1
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                self.stats.malformed += 1
                continue
            if not isinstance(obj, dict):
                self.stats.malformed += 1
                continue
            column = column or _guess_column(obj.keys(), self.path)
            yield (
                number,
                obj.get(column),
                str(obj.get(self.id_column, "")) if self.id_column else "",
            )

    def _csv_records(
        self,
        lines: Iterator[tuple[int, str]],
        span: _Span | None = None,
        given_header: list[str] | None = None,
    ) -> Iterator[tuple]:
        delimiter = "\t" if self.format == "tsv" else ","
        current = [0]

        def texts() -> Iterator[str]:
            for n, line in lines:
                current[0] = n
                yield line

        reader = csv.reader(texts(), delimiter=delimiter)
        header = given_header  # a range after the first one is given the file's header
        if header is None:
            header = next(reader, None)
            if header is None:
                return
            self.stats.records -= 1  # the header is not a record
            if span is not None:
                span.row_start = True
        column = self.column or _guess_column(header, self.path)
        if column not in header:
            raise InvalidParameterError(
                f"{self.path}: no column {column!r} in the header {header[:10]!r}; pass column=."
            )
        pos = header.index(column)
        id_pos = header.index(self.id_column) if self.id_column in header else None
        if self.id_column and id_pos is None:
            raise InvalidParameterError(
                f"{self.path}: no id column {self.id_column!r} in {header!r}."
            )
        for row in reader:
            if span is not None:
                span.row_start = True
            if not row or (len(row) == 1 and not row[0].strip()):
                self.stats.empty += 1
                continue
            if len(row) <= pos or (id_pos is not None and len(row) <= id_pos):
                self.stats.malformed += 1
                continue
            yield current[0] - 1, row[pos], row[id_pos] if id_pos is not None else ""

    def _parquet_records(self, groups: range | None = None) -> Iterator[tuple[int, Any, str]]:
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(self.path, memory_map=True)
        names = pf.schema_arrow.names
        column = self.column or _guess_column(names, self.path)
        if column not in names or (self.id_column and self.id_column not in names):
            raise InvalidParameterError(
                f"{self.path}: needs column(s) {[c for c in (column, self.id_column) if c]}; "
                f"the file has {names[:20]}."
            )
        wanted = [column] + ([self.id_column] if self.id_column else [])
        number = 0
        only = {} if groups is None else {"row_groups": list(groups)}  # a range: its row groups
        for batch in pf.iter_batches(batch_size=65536, columns=wanted, **only):
            texts = batch.column(0).to_pylist()
            ids = batch.column(1).to_pylist() if self.id_column else None
            for i, text in enumerate(texts):
                self.stats.records += 1
                yield number, text, (str(ids[i]) if ids is not None else "")
                number += 1

    def _report(self) -> None:
        s = self.stats
        problems = {k: v for k, v in s.as_dict().items() if k not in ("records", "kept") and v}
        if problems:
            logger.warning(
                "%s: kept %d of %d records; dropped %s.",
                self.path,
                s.kept,
                s.records,
                ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in problems.items()),
            )


def _universal_lines(raw: IO[bytes], chunk: int = 1 << 20) -> Iterator[bytes]:
    """The lines of a binary stream, each with its ending, split at ``\n``, ``\r\n`` and a lone
    ``\r`` (old Mac files), so a ``\r``-only corpus is not read as one giant caption. Reads
    ``chunk`` bytes at a time, so memory stays bounded whatever the line endings."""
    rest = b""
    while block := raw.read(chunk):
        lines = (rest + block).splitlines(keepends=True)
        # keep back an unfinished last line, or one ending in "\r" whose "\n" may follow
        rest = b"" if lines[-1].endswith(b"\n") else lines.pop()
        yield from lines
    if rest:
        yield rest


def _open_binary(path: Path) -> IO[bytes]:
    if path.name.lower().endswith(".gz"):
        return io.BufferedReader(gzip.open(path, "rb"), buffer_size=1 << 20)
    return path.open("rb", buffering=1 << 20)


def _guess_column(names: Any, path: Any) -> str:
    names = list(names)
    for candidate in _DEFAULT_COLUMNS:
        if candidate in names:
            return candidate
    raise InvalidParameterError(
        f"{path}: cannot tell which field holds the caption among {names[:20]}; pass column=."
    )


def read_captions(path: str | Path, **options: Any) -> list[str]:
    """All kept captions of a (small) corpus as a list; ``options`` as for :class:`CaptionCorpus`."""
    return list(CaptionCorpus(path, **options))
