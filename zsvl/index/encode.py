"""Stage 1 of an index build: encode a caption corpus into float16 shards, resumably.

Progress lives in ``<out>/build_state.json`` (see :mod:`zsvl.index.storage`), rewritten atomically after each shard's files are on
disk. Re-running with the same corpus, encoder and shard size skips the recorded shards (reading,
not encoding, their captions) and continues with the next; the shards are byte-identical to an
uninterrupted run because every shard is the same block of captions encoded in one call.
"""

from __future__ import annotations

import gzip
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from zsvl._progress import progress_bar, progress_line
from zsvl.data.captions import CaptionCorpus
from zsvl.errors import IndexMismatchError, InvalidParameterError
from zsvl.index.shards import ShardInfo, write_shard
from zsvl.index.storage import EMBEDDINGS_DIR, read_state, write_state

__all__ = ["encoder_info", "model_name", "encode_to_shards"]

logger = logging.getLogger(__name__)


def encoder_info(encoder: Any) -> dict[str, Any]:
    """What must match between an index and the encoder that queries it."""
    return {"fingerprint": encoder.fingerprint, "embed_dim": int(encoder.embed_dim)}


def model_name(encoder: Any, given: str | None = None) -> str | None:
    """The spec to reload the encoder with: ``given`` (as the user typed it) or the encoder's own."""
    spec = given if given is not None else getattr(encoder, "spec", None)
    return str(spec) if spec is not None else None


def _start_state(out: Path, settings: dict[str, Any], resume: bool) -> dict[str, Any]:
    """The state to continue from: the recorded one when it matches ``settings``, else a new one."""
    state = read_state(out)
    if state is not None and resume:
        if state.get("settings") != settings:
            changed = sorted(k for k in settings if state.get("settings", {}).get(k) != settings[k])
            raise IndexMismatchError(
                f"{out} holds an unfinished build with other settings ({', '.join(changed)} "
                f"differ); pass overwrite=True (CLI --overwrite) to start again, or use another --out."
            )
        logger.info("Resuming the build in %s after %d shards.", out, len(state["shards"]))
        return state
    shutil.rmtree(out / EMBEDDINGS_DIR, ignore_errors=True)
    return {
        "settings": settings,
        "shards": [],
        "encoded": False,
        "corpus_stats": None,
        "encode_seconds": 0.0,
    }


def estimate_records(corpus: CaptionCorpus) -> int:
    """Records in the corpus file (Parquet rows, or lines), for the progress bar's total (an
    estimate: cleaning and deduplication keep fewer)."""
    path = Path(corpus.path)
    if corpus.format == "parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    opener = gzip.open if path.suffix == ".gz" else open
    lines, last = 0, b"\n"
    with opener(path, "rb") as f:
        while block := f.read(1 << 22):
            lines += block.count(b"\n")
            last = block[-1:]
    return lines + (last != b"\n")


def encode_to_shards(
    corpus: CaptionCorpus,
    encoder: Any,
    out: str | Path,
    *,
    shard_size: int = 65536,
    batch_size: int = 256,
    resume: bool = True,
    on_shard: Callable[[ShardInfo], None] | None = None,
    model: str | None = None,
) -> dict[str, Any]:
    """Encode every kept caption of ``corpus`` into ``<out>/embeddings``; returns the build state.

    on_shard : called after each new shard is recorded (progress bars, tests that kill the build).
    model : the model spec to record for reloading the encoder (default: the encoder's spec).
    """
    if not isinstance(shard_size, int) or shard_size < 1:
        raise InvalidParameterError(f"shard_size must be an int >= 1. Got {shard_size!r}.")
    out = Path(out)
    folder = out / EMBEDDINGS_DIR
    settings = {
        "corpus": corpus.settings(),
        "encoder": encoder_info(encoder),
        "shard_size": shard_size,
    }
    state = _start_state(out, settings, resume)
    state["model"] = model_name(encoder, model)
    folder.mkdir(parents=True, exist_ok=True)
    if state["encoded"]:
        return state
    done = len(state["shards"])
    start = time.perf_counter()
    with progress_bar(
        total=estimate_records(corpus), desc="encode captions", unit="caption", unit_scale=True
    ) as bar:
        bar.update(sum(s["rows"] for s in state["shards"]))  # resumed shards
        for position, block in enumerate(corpus.iter_blocks(shard_size)):
            if position < done:
                continue
            emb = np.asarray(encoder.encode_texts(block.captions, batch_size=batch_size))
            info = write_shard(
                folder, position, emb, block.ids, block.captions, block.records, block.source_ids
            )
            state["shards"].append(info.as_dict())
            seconds = time.perf_counter() - start
            state["encode_seconds"] += seconds
            start = time.perf_counter()
            write_state(out, state)
            bar.update(info.rows)
            progress_line(
                f"shard {position}: {info.rows:,} captions in {seconds:.1f} s "
                f"({info.rows / max(seconds, 1e-9):,.0f}/s), {info.last_id + 1:,} so far"
            )
            logger.info(
                "shard %d: %d captions encoded (%d so far)", position, info.rows, info.last_id + 1
            )
            if on_shard is not None:
                on_shard(info)
    if not state["shards"]:
        raise InvalidParameterError(
            f"The corpus {corpus.path} yielded no captions ({corpus.stats.records} records read: "
            f"{corpus.stats.as_dict()}); check the file, format= and column=."
        )
    state["encoded"] = True
    state["corpus_stats"] = corpus.stats.as_dict()
    state["encode_seconds"] += time.perf_counter() - start
    write_state(out, state)
    return state
