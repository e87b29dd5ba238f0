"""Build a caption index: encode to shards (resumable), choose, train, fill, tune, write.

``build_index(corpus, encoder, out)`` runs both stages; ``build_from_shards(out)`` runs stage 2 on
shards already in ``<out>/embeddings`` (from :func:`zsvl.index.encode.encode_to_shards` or written
directly with :func:`zsvl.index.shards.write_shard` and a build state). Stage 2 is deterministic
given the shards and ``seed``, so a resumed build produces the same index as an uninterrupted one.

Stage 2 owns the whole FAISS life of the index: everything it needs to know about the index
(list count, whether it takes explicit ids) is read from the CPU index *before* it moves to a
GPU, since ``faiss.extract_index_ivf`` only knows CPU classes. The tuning queries are held out:
left out of the training sample and of the index while tuning (then added), so the recall
recorded in the manifest is what fresh queries from the corpus's distribution get.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from zsvl._progress import progress_line
from zsvl._version import __version__
from zsvl.data.captions import CaptionCorpus
from zsvl.errors import IndexFormatError, IndexMismatchError, InvalidParameterError
from zsvl.index import storage
from zsvl.index.backend import import_faiss
from zsvl.index.choose import choose_factory, parse_memory
from zsvl.index.encode import encode_to_shards
from zsvl.index.gpu import to_cpu, to_gpu
from zsvl.index.search import CaptionIndex
from zsvl.index.shards import ShardInfo, ShardSet
from zsvl.index.train import (
    DEFAULT_TRAIN_MEMORY,
    Plan,
    held_out_count,
    held_out_ids,
    plan_for,
    reserve_lists,
    train_sample,
)
from zsvl.index.tune import drop_self, exact_search, tune_search_params

__all__ = ["build_index", "build_from_shards", "DEFAULT_MAX_MEMORY", "DEFAULT_TRAIN_MEMORY"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_MEMORY = "4G"


def build_index(
    corpus: CaptionCorpus | str | Path,
    encoder: Any,
    out: str | Path,
    *,
    factory: str = "auto",
    max_memory: str | int | None = DEFAULT_MAX_MEMORY,
    target_recall: float = 0.95,
    k: int = 10,
    shard_size: int = 65536,
    batch_size: int = 256,
    seed: int = 0,
    tune_queries: int | np.ndarray = 1000,
    resume: bool = True,
    overwrite: bool = False,
    use_gpu: bool | None = None,
    on_shard: Callable[[ShardInfo], None] | None = None,
    model: str | None = None,
    train_memory: str | int | None = DEFAULT_TRAIN_MEMORY,
    engine: Any = "local",
) -> CaptionIndex:
    """Encode ``corpus`` with ``encoder`` and build a searchable index directory at ``out``.

    corpus : a :class:`CaptionCorpus` or a path (format from its name).
    factory : "auto" (see :mod:`zsvl.index.choose`) or a FAISS factory string ("Flat",
        "IVF1024,Flat", "OPQ32,IVF4096_HNSW32,PQ32", "HNSW32", ...). The metric is inner product.
    max_memory : budget for the filled index ("4G", "512M", bytes, or None for none).
    train_memory : budget for the transient training sample (float32 vectors plus one
        transformed copy), separate from ``max_memory``. The sample aims for 64 vectors per IVF
        list and needs at least 39 (FAISS's minimum). "auto": 2 GiB, raised to that minimum
        when needed; an explicit budget below the minimum is an error; None: no budget.
    target_recall, k : ``nprobe``/``efSearch`` are tuned until recall@k against exact search on
        ``tune_queries`` held-out queries reaches ``target_recall``: a number of stored vectors
        drawn at random and kept out of training and (for IVF indexes) out of the index while
        tuning, or query embeddings (q, dim) of the kind the index will serve (image embeddings
        for image-to-text search sit across the modality gap and may need a larger nprobe).
    shard_size : captions per float16 shard (the unit of resumption).
    resume : continue an unfinished build in ``out``; overwrite : discard what ``out`` holds.
    use_gpu : train and fill on GPUs when FAISS has them (None: when available).
    model : the model spec recorded in the manifest for reloading the encoder ("toy").
    engine : "local", or "ray" / a :class:`zsvl.distributed.RayEngine` to encode and fill on a
        Ray cluster (``pip install 'zsvl[ray]'``); the index written is the same.
    Returns the loaded :class:`CaptionIndex`. An existing complete index built with the same
    settings is returned as is.
    """
    out = Path(out)
    import_faiss()  # fail before encoding anything when FAISS is missing
    if engine != "local":
        from zsvl.distributed.engine import resolve_engine

        engine = resolve_engine(engine)
    if not isinstance(corpus, CaptionCorpus):
        corpus = CaptionCorpus(corpus)
    options = _options(factory, max_memory, target_recall, k, seed, tune_queries, train_memory)
    if (out / storage.MANIFEST).exists():
        if not overwrite:
            existing = storage.read_manifest(out)
            pairs = (
                ("options", existing["build"]["options"], options),
                ("corpus", existing["build"].get("corpus"), corpus.settings()),
                ("encoder", existing["encoder"]["fingerprint"], encoder.fingerprint),
            )
            differ = [name for name, old, new in pairs if old != new]
            if not differ:
                logger.info("%s is already built with these settings; loading it.", out)
                return CaptionIndex.load(out, encoder)
            raise IndexMismatchError(
                f"{out} already holds a finished index built with other settings "
                f"({', '.join(differ)} differ); pass overwrite=True (CLI --overwrite) to replace "
                f"it, or choose another --out."
            )
        (out / storage.MANIFEST).unlink()
    if overwrite:
        (out / storage.STATE_FILE).unlink(missing_ok=True)
    local = engine in (None, "local")
    encode = encode_to_shards if local else engine.encode_to_shards
    encode(
        corpus,
        encoder,
        out,
        shard_size=shard_size,
        batch_size=batch_size,
        resume=resume and not overwrite,
        on_shard=on_shard,
        model=model,
    )
    build_from_shards(
        out,
        factory=factory,
        max_memory=max_memory,
        target_recall=target_recall,
        k=k,
        seed=seed,
        tune_queries=tune_queries,
        use_gpu=use_gpu,
        train_memory=train_memory,
        fill=None if local else engine.fill,
    )
    return CaptionIndex.load(out, encoder)


def _options(
    factory: str,
    max_memory: Any,
    target_recall: float,
    k: int,
    seed: int,
    tune_queries: Any,
    train_memory: Any,
) -> dict[str, Any]:
    if not 0 < target_recall <= 1:
        raise InvalidParameterError(f"target_recall must be in (0, 1]. Got {target_recall!r}.")
    if not isinstance(k, int) or k < 1:
        raise InvalidParameterError(f"k must be an int >= 1. Got {k!r}.")
    given = not np.isscalar(tune_queries)
    return {
        "factory": factory,
        "max_memory": parse_memory(max_memory),
        "train_memory": "auto" if train_memory == "auto" else parse_memory(train_memory),
        "target_recall": target_recall,
        "k": k,
        "seed": seed,
        "tune_queries": f"{len(tune_queries)} given queries" if given else tune_queries,
    }


def build_from_shards(
    out: str | Path,
    *,
    factory: str = "auto",
    max_memory: str | int | None = DEFAULT_MAX_MEMORY,
    target_recall: float = 0.95,
    k: int = 10,
    seed: int = 0,
    tune_queries: int | np.ndarray = 1000,
    use_gpu: bool | None = None,
    train_memory: str | int | None = DEFAULT_TRAIN_MEMORY,
    fill: Callable[[Any, ShardSet, int, np.ndarray | None], Any] | None = None,
) -> dict[str, Any]:
    """Stage 2: build, tune and write the index from the complete shards in ``out``.

    fill : ``fill(trained_cpu_index, shards, chunk_rows) -> filled CPU index`` in place of the
        in-process fill (the Ray engine fills part indexes on a cluster and merges them).

    Writes ``index.faiss``, ``metadata.parquet`` and, last, ``manifest.json``; returns the manifest.
    """
    out = Path(out)
    state = storage.read_state(out)
    if state is None or not state.get("encoded"):
        raise IndexFormatError(
            f"{out} has no complete set of embedding shards; encode the corpus first "
            f"(build_index does both stages)."
        )
    options = _options(factory, max_memory, target_recall, k, seed, tune_queries, train_memory)
    dim = int(state["settings"]["encoder"]["embed_dim"])
    shards = ShardSet(out / storage.EMBEDDINGS_DIR, [ShardInfo(**s) for s in state["shards"]], dim)
    n = shards.count
    if not shards.contiguous:
        raise IndexFormatError(
            f"{out}: shard ids are not dense and in order; rebuild from scratch."
        )
    n_held = held_out_count(n, k, tune_queries)
    if factory == "auto":  # IVF lists sized for the vectors left to train on
        choice = choose_factory(n, dim, options["max_memory"], trainable=n - n_held)
        factory_str, reason = choice.factory, choice.reason
    else:
        factory_str, reason = factory, "given by the user"
    logger.info("Index for %d x %d vectors: %s (%s).", n, dim, factory_str, reason)
    progress_line(f"index for {n:,} x {dim} vectors: {factory_str} ({reason})")
    timings: dict[str, float] = {"encode_s": float(state.get("encode_seconds", 0.0))}
    chunk_rows = _chunk_rows(dim, options["max_memory"])
    cpu_index = _new_index(factory_str, dim)
    plan = plan_for(cpu_index)
    rng = np.random.default_rng(seed)
    held = held_out_ids(n, n_held, rng)
    index, on_gpu = to_gpu(cpu_index, use_gpu)
    t = time.perf_counter()
    train_info: dict[str, Any] = {"points": 0}
    if not cpu_index.is_trained:
        ids, train_info = train_sample(plan, n, dim, options["train_memory"], held, rng)
        sample = shards.gather(ids)
        index.train(sample)
        if not on_gpu:
            reserve_lists(index, sample, n)
        del sample
    timings["train_s"] = time.perf_counter() - t
    if train_info.get("points"):
        progress_line(f"trained on {train_info['points']:,} vectors in {timings['train_s']:.1f} s")
    t = time.perf_counter()
    skip = held if plan.with_ids else None
    if fill is None:
        _fill(index, shards, chunk_rows, plan, skip)
        index = to_cpu(index, on_gpu)
    else:
        index = fill(to_cpu(index, on_gpu), shards, chunk_rows, skip)
    timings["add_s"] = time.perf_counter() - t
    progress_line(f"filled in {timings['add_s']:.1f} s; tuning search parameters")
    t = time.perf_counter()
    tuning = _tune(index, shards, plan, held, tune_queries, k, target_recall, chunk_rows)
    timings["tune_s"] = time.perf_counter() - t
    progress_line(
        f"tuned {tuning['params'] or '(exact)'}: recall@{k} {tuning['recall']:.3f} "
        f"in {timings['tune_s']:.1f} s"
    )
    settings = state["settings"]
    fields = {
        "zsvl_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "encoder": {**settings["encoder"], "spec": state.get("model")},
        "factory": factory_str,
        "search_params": tuning["params"],
        "tuning": tuning,
        "build": {
            "options": options,
            "choice_reason": reason,
            "corpus": settings["corpus"],
            "shard_size": settings["shard_size"],
            "gpu": on_gpu,
            "train": train_info,
            "faiss_version": import_faiss().__version__,
        },
        "corpus_stats": state.get("corpus_stats"),
        "timings": timings,
    }
    manifest = storage.write_index_files(out, index, shards, fields)
    logger.info(
        "Built %s: %d vectors, recall@%d %.3f with %r (measured on %d %s).",
        out, n, k, tuning["recall"], tuning["params"], tuning["queries"], tuning["query_source"],
    )  # fmt: skip
    return manifest


def _chunk_rows(dim: int, budget: int | None) -> int:
    """Rows per float32 chunk while adding/scanning: at most 1/16 of the budget, at most 65536."""
    if budget is None:
        return 65536
    return int(max(1024, min(65536, budget // 16 // (4 * dim))))


def _new_index(factory: str, dim: int) -> Any:
    """An empty CPU index from a factory string (inner product), polysemous training off."""
    faiss = import_faiss()
    try:
        index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        raise InvalidParameterError(
            f"FAISS cannot build the factory string {factory!r} ({str(exc).splitlines()[0][:160]})."
            f" Examples: 'Flat', 'IVF1024,Flat', 'IVF4096,SQ8', 'OPQ32,IVF4096_HNSW32,PQ32'."
        ) from exc
    # index_factory turns on polysemous training for PQ codes; zsvl never searches by Hamming
    # distance, and that training costs minutes, so it is switched off.
    inner = faiss.downcast_index(index)
    if isinstance(inner, faiss.IndexPreTransform):
        inner = faiss.downcast_index(inner.index)
    if hasattr(inner, "do_polysemous_training"):
        inner.do_polysemous_training = False
    return index


def _fill(
    index: Any, shards: ShardSet, chunk_rows: int, plan: Plan, skip: np.ndarray | None
) -> None:
    """Add every stored vector but the ``skip`` ids: with explicit ids for IVF indexes, in id
    order (positional ids) for the others."""
    for ids, chunk in shards.iter_chunks(chunk_rows):
        if plan.with_ids:
            if skip is not None and len(skip):
                keep = ~np.isin(ids, skip, assume_unique=True)
                ids, chunk = ids[keep], chunk[keep]
            if len(ids):
                index.add_with_ids(np.ascontiguousarray(chunk), np.ascontiguousarray(ids))
        else:
            if ids[0] != index.ntotal:
                raise IndexFormatError(
                    "Shard ids are not dense; a positional index cannot hold them."
                )
            index.add(chunk)


def _tune(
    index: Any,
    shards: ShardSet,
    plan: Plan,
    held: np.ndarray,
    given: int | np.ndarray,
    k: int,
    target_recall: float,
    chunk_rows: int,
) -> dict[str, Any]:
    """Tune the filled CPU index; returns the tuning record for the manifest.

    Given query embeddings (q, dim) are used as they are. Otherwise the held-out stored vectors
    are the queries: for IVF indexes they are not in the index while tuning (their exact
    neighbours are searched among the other vectors) and are added afterwards; a positional
    index (HNSW) already holds them, so their own id is dropped from both result lists.
    """
    common: dict[str, Any] = {"k": k, "target_recall": target_recall, "vectors": shards.gather}
    if not np.isscalar(given):
        queries = np.ascontiguousarray(given, dtype=np.float32)
        scores, truth = exact_search(shards, queries, k, chunk_rows=chunk_rows)
        result = tune_search_params(index, queries, truth, kth_scores=scores[:, k - 1], **common)
        return {**result.as_dict(), "query_source": "given query embeddings"}
    if len(held) == 0:
        return {
            "params": "",
            "recall": 1.0,
            "recall_stderr": 0.0,
            "k": k,
            "reached": True,
            "queries": 0,
            "query_source": "none (no tuning queries)",
        }
    queries = shards.gather(held)
    if plan.with_ids:
        scores, truth = exact_search(shards, queries, k, chunk_rows=chunk_rows, exclude=held)
        result = tune_search_params(index, queries, truth, kth_scores=scores[:, k - 1], **common)
        index.add_with_ids(queries, held)
        source = "held-out corpus vectors (out of training and of the index while tuning)"
        return {**result.as_dict(), "query_source": source}
    scores, truth = exact_search(shards, queries, k + 1, chunk_rows=chunk_rows)
    is_self = truth == held[:, None]
    kth = np.where(is_self[:, :k].any(1), scores[:, k], scores[:, k - 1])
    truth = drop_self(truth, held, k)
    result = tune_search_params(index, queries, truth, self_ids=held, kth_scores=kth, **common)
    source = "corpus vectors left out of training (stored in the index, own id dropped)"
    return {**result.as_dict(), "query_source": source}
