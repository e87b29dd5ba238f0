"""Reading a corpus as independent ranges and merging them back into the sequential blocks.

:func:`plan_ranges` cuts a corpus into byte ranges (uncompressed txt, JSONL, CSV/TSV; each range
owns the lines that start in it) or runs of Parquet row groups; gzip'd files cannot be cut, so
they get no plan and are read in one sequential pass. Each range is read and cleaned by
:func:`~zsvl.data.caption_ranges.read_range` (the same reader code as a sequential read,
anywhere on the cluster); :class:`RangeMerger` takes the results in file order, drops
duplicates with their hashes ("first occurrence wins"), offsets record numbers, assigns dense ids
and cuts the same :class:`CaptionBlock` s as :meth:`CaptionCorpus.iter_blocks`, with the same ``corpus.stats``.

A CSV/TSV range whose first line turns out to lie inside a quoted field that spans lines (the
range before read past its end to finish that row) is discarded, and the rest of the file is
read in the driver, range after range, each starting where the one before stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from zsvl.data.caption_ranges import RangeRead, range_context, read_range
from zsvl.data.captions import CaptionBlock, CaptionCorpus, ReadStats

__all__ = ["plan_ranges", "RangeMerger", "read_in_ranges"]

logger = logging.getLogger(__name__)


def plan_ranges(corpus: CaptionCorpus, range_bytes: int) -> list[tuple[int, int]] | None:
    """``(start, end)`` byte ranges of about ``range_bytes`` each (row-group runs of about that
    many compressed bytes for Parquet), or None when the file cannot be cut (gzip)."""
    path = Path(corpus.path)
    if path.name.lower().endswith(".gz"):
        return None
    if corpus.format == "parquet":
        import pyarrow.parquet as pq

        meta = pq.ParquetFile(path).metadata
        plan, start, size = [], 0, 0
        for g in range(meta.num_row_groups):
            size += meta.row_group(g).total_byte_size
            if size >= range_bytes:
                plan.append((start, g + 1))
                start, size = g + 1, 0
        if start < meta.num_row_groups or not plan:
            plan.append((start, meta.num_row_groups))
        return plan
    total = path.stat().st_size
    bounds = list(range(0, total, max(1, range_bytes))) + [total]
    return [(a, b) for a, b in zip(bounds, bounds[1:], strict=False)] or [(0, 0)]


class RangeMerger:
    """Merges :class:`RangeRead` s, given in file order, into the sequential blocks."""

    def __init__(
        self, corpus: CaptionCorpus, block_size: int, context: dict[str, Any], range_bytes: int
    ) -> None:
        self.corpus, self.block_size, self.context = corpus, block_size, context
        self.range_bytes = range_bytes
        corpus.stats = ReadStats()
        self.seen: set[int] = set()
        self.offset = 0  # records before the next range
        self.stop: int | None = None  # where the previous range stopped reading
        self.next_id = 0
        self.caps: list[str] = []
        self.recs: list[np.ndarray] = []
        self.srcs: list[str] = []
        self.resynced = False

    def add(self, part: RangeRead) -> Iterator[CaptionBlock]:
        """The blocks completed by ``part``; parts after a resync are ignored."""
        if self.resynced:
            return
        if self.stop is not None and part.first != self.stop:
            # a quoted CSV field crossed into this range: read on from a known row start
            self.resynced = True
            logger.warning(
                "%s: a quoted field spans the range boundary at byte %d; reading the rest of "
                "the file from byte %d in the driver.",
                self.corpus.path,
                part.first,
                self.stop,
            )
            size = Path(self.corpus.path).stat().st_size
            start = self.stop
            while start < size:
                chained = read_range(self.corpus, start, start + self.range_bytes, self.context)
                yield from self._take(chained)
                start = chained.stop
            return
        yield from self._take(part)

    def _take(self, part: RangeRead) -> Iterator[CaptionBlock]:
        stats = self.corpus.stats
        for name, value in part.stats.as_dict().items():
            if name not in ("kept", "duplicates"):
                setattr(stats, name, getattr(stats, name) + value)
        keep = np.ones(len(part.captions), dtype=bool)
        if part.keys is not None:
            for i, key in enumerate(part.keys.tolist()):
                if key in self.seen:
                    keep[i] = False
                    stats.duplicates += 1
                else:
                    self.seen.add(key)
        records = part.records + self.offset
        self.offset += part.lines
        self.stop = part.stop
        for i in np.flatnonzero(keep).tolist():
            self.caps.append(part.captions[i])
            self.recs.append(records[i])
            self.srcs.append(part.source_ids[i])
            if len(self.caps) == self.block_size:
                yield self._block()

    def _block(self) -> CaptionBlock:
        n = len(self.caps)
        block = CaptionBlock(
            captions=self.caps,
            ids=np.arange(self.next_id, self.next_id + n, dtype=np.int64),
            records=np.asarray(self.recs, dtype=np.int64),
            source_ids=self.srcs if self.corpus.id_column else None,
        )
        self.corpus.stats.kept += n
        self.next_id += n
        self.caps, self.recs, self.srcs = [], [], []
        return block

    def finish(self) -> Iterator[CaptionBlock]:
        """The last, shorter block; then logs what was dropped, as a sequential read does."""
        if self.caps:
            yield self._block()
        self.corpus._report()


def read_in_ranges(
    corpus: CaptionCorpus,
    block_size: int,
    range_bytes: int,
    read: Callable[[list[tuple[int, int]], dict[str, Any]], Iterator[RangeRead]] | None = None,
) -> Iterator[CaptionBlock]:
    """The blocks of ``corpus.iter_blocks(block_size)``, read as ranges. ``read(plan, context)``
    yields each range's :class:`RangeRead` in plan order (default: one after another, here)."""
    plan = plan_ranges(corpus, range_bytes)
    if plan is None:
        yield from corpus.iter_blocks(block_size)
        return
    context = range_context(corpus)
    merger = RangeMerger(corpus, block_size, context, range_bytes)
    parts = (
        read(plan, context)
        if read is not None
        else (read_range(corpus, a, b, context) for a, b in plan)
    )
    for part in parts:
        yield from merger.add(part)
        if merger.resynced:  # the driver read the rest itself: stop the range reads
            break
    yield from merger.finish()
