"""Build a caption index: encode to shards (resumable), choose, train, fill, tune, write.

``build_index(corpus, encoder, out)`` runs both stages; ``build_from_shards(out)`` runs stage 2 on
shards already in ``<out>/embeddings`` (from :func:`zsvl.index.encode.encode_to_shards` or written
directly with :func:`zsvl.index.shards.write_shard` and a build state). Stage 2 is deterministic
given the shards and ``seed``, so a resumed build produces the same index as an uninterrupted one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from zsvl._atomic import atomic_path
from zsvl._version import __version__
from zsvl.data.captions import CaptionCorpus
from zsvl.errors import IndexFormatError, IndexMismatchError, InvalidParameterError
from zsvl.index import storage
from zsvl.index.choose import MIN_POINTS_PER_CENTROID, choose_factory, parse_memory
from zsvl.index.encode import encode_to_shards, read_state
from zsvl.index.gpu import to_cpu, to_gpu
from zsvl.index.search import CaptionIndex
from zsvl.index.shards import ShardInfo, ShardSet, atomic_write_json
from zsvl.index.tune import drop_self, exact_search, tune_search_params

__all__ = ["build_index", "build_from_shards", "DEFAULT_MAX_MEMORY"]

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
    engine: Any = "local",
) -> CaptionIndex:
    """Encode ``corpus`` with ``encoder`` and build a searchable index directory at ``out``.

    corpus : a :class:`CaptionCorpus` or a path (format from its name).
    factory : "auto" (see :mod:`zsvl.index.choose`) or a FAISS factory string ("Flat",
        "IVF1024,Flat", "OPQ32,IVF4096_HNSW32,PQ32", "HNSW32", ...). The metric is inner product.
    max_memory : budget for the filled index ("4G", "512M", bytes, or None for none).
    target_recall, k : ``nprobe``/``efSearch`` are tuned until recall@k against exact search on
        ``tune_queries`` held-out queries reaches ``target_recall``: a number of stored vectors
        drawn at random (their own id excluded), or query embeddings (q, dim) of the kind the
        index will serve (image embeddings for image-to-text search sit across the modality gap
        and may need a larger nprobe than text queries).
    shard_size : captions per float16 shard (the unit of resumption).
    resume : continue an unfinished build in ``out``; overwrite : discard what ``out`` holds.
    model : the model spec recorded in the manifest for reloading the encoder ("toy").
    engine : "local", or "ray" / a :class:`zsvl.distributed.RayEngine` to encode and fill on a
        Ray cluster (``pip install 'zsvl[ray]'``); the index written is the same.
    Returns the loaded :class:`CaptionIndex`. An existing complete index built with the same
    settings is returned as is.
    """
    out = Path(out)
    if engine != "local":
        from zsvl.distributed.engine import resolve_engine

        engine = resolve_engine(engine)
    if not isinstance(corpus, CaptionCorpus):
        corpus = CaptionCorpus(corpus)
    options = _options(factory, max_memory, target_recall, k, seed, tune_queries)
    if (out / storage.MANIFEST).exists():
        if not overwrite:
            existing = storage.read_manifest(out)
            differ = [name for name, old, new in (
                ("options", existing["build"]["options"], options),
                ("corpus", existing["build"].get("corpus"), corpus.settings()),
                ("encoder", existing["encoder"]["fingerprint"], encoder.fingerprint)) if old != new]
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
        (out / "build_state.json").unlink(missing_ok=True)
    encode = encode_to_shards if engine in (None, "local") else engine.encode_to_shards
    encode(corpus, encoder, out, shard_size=shard_size, batch_size=batch_size,
                     resume=resume and not overwrite, on_shard=on_shard, model=model)
    build_from_shards(out, factory=factory, max_memory=max_memory, target_recall=target_recall,
                      k=k, seed=seed, tune_queries=tune_queries, use_gpu=use_gpu,
                      fill=None if engine in (None, "local") else engine.fill)
    return CaptionIndex.load(out, encoder)


def _options(factory: str, max_memory: Any, target_recall: float, k: int, seed: int,
             tune_queries: Any) -> dict[str, Any]:
    if not 0 < target_recall <= 1:
        raise InvalidParameterError(f"target_recall must be in (0, 1]. Got {target_recall!r}.")
    if not isinstance(k, int) or k < 1:
        raise InvalidParameterError(f"k must be an int >= 1. Got {k!r}.")
    return {"factory": factory, "max_memory": parse_memory(max_memory),
            "target_recall": target_recall, "k": k, "seed": seed,
            "tune_queries": tune_queries if np.isscalar(tune_queries) else
            f"{len(tune_queries)} given queries"}


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
    fill: Callable[[Any, ShardSet, int], Any] | None = None,
) -> dict[str, Any]:
    """Stage 2: build, tune and write the index from the complete shards in ``out``.

    fill : ``fill(trained_cpu_index, shards, chunk_rows) -> filled CPU index`` in place of the
        in-process fill (the Ray engine fills part indexes on a cluster and merges them).

    Writes ``index.faiss``, ``metadata.parquet`` and, last, ``manifest.json``; returns the manifest.
    """
    out = Path(out)
    state = read_state(out)
    if state is None or not state.get("encoded"):
        raise IndexFormatError(f"{out} has no complete set of embedding shards; encode the corpus "
                               f"first (build_index does both stages).")
    options = _options(factory, max_memory, target_recall, k, seed, tune_queries)
    budget = options["max_memory"]
    dim = int(state["settings"]["encoder"]["embed_dim"])
    shards = ShardSet(out / storage.EMBEDDINGS_DIR, [ShardInfo(**s) for s in state["shards"]], dim)
    n = shards.count
    if not shards.contiguous:
        raise IndexFormatError(f"{out}: shard ids are not dense and in order; rebuild from scratch.")
    if factory == "auto":
        choice = choose_factory(n, dim, budget)
        factory_str, reason = choice.factory, choice.reason
    else:
        factory_str, reason = factory, "given by the user"
    logger.info("Index for %d x %d vectors: %s (%s).", n, dim, factory_str, reason)
    timings: dict[str, float] = {"encode_s": float(state.get("encode_seconds", 0.0))}
    chunk_rows = _chunk_rows(dim, budget)
    index, on_gpu = _new_index(factory_str, dim, use_gpu)
    rng = np.random.default_rng(seed)
    t = time.perf_counter()
    if not index.is_trained:
        sample = shards.gather(_train_sample(index, n, dim, budget, rng))
        index.train(sample)
        _reserve_lists(index, sample, n)
        del sample
    timings["train_s"] = time.perf_counter() - t
    t = time.perf_counter()
    if fill is None:
        _fill(index, shards, chunk_rows)
        index = to_cpu(index, on_gpu)
    else:
        index = fill(to_cpu(index, on_gpu), shards, chunk_rows)
    timings["add_s"] = time.perf_counter() - t
    t = time.perf_counter()
    tuning = _tune(index, shards, n, rng, k=k, target_recall=target_recall, count=tune_queries,
                   chunk_rows=chunk_rows)
    timings["tune_s"] = time.perf_counter() - t
    manifest = _write_outputs(out, index, shards, state, dict(
        factory=factory_str, reason=reason, tuning=tuning, options=options, timings=timings,
        gpu=on_gpu,
    ))
    logger.info("Built %s: %d vectors, recall@%d %.3f with %r.", out, n, k,
                tuning["recall"], tuning["params"])
    return manifest


def _chunk_rows(dim: int, budget: int | None) -> int:
    """Rows per float32 chunk while adding/scanning: at most 1/16 of the budget, at most 65536."""
    if budget is None:
        return 65536
    return int(max(1024, min(65536, budget // 16 // (4 * dim))))


def _new_index(factory: str, dim: int, use_gpu: bool | None) -> tuple[Any, bool]:
    import faiss

    try:
        index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        raise InvalidParameterError(
            f"FAISS cannot build the factory string {factory!r} ({str(exc).splitlines()[0][:160]})."
            f" Examples: 'Flat', 'IVF1024,Flat', 'IVF4096,SQ8', 'OPQ32,IVF4096_HNSW32,PQ32'."
        ) from exc
    _no_polysemous(index)
    return to_gpu(index, use_gpu)


def _no_polysemous(index: Any) -> None:
    """index_factory turns on polysemous training for PQ codes; zsvl never searches by Hamming
    distance, and that training costs minutes, so it is switched off."""
    import faiss

    inner = faiss.downcast_index(index)
    if isinstance(inner, faiss.IndexPreTransform):
        inner = faiss.downcast_index(inner.index)
    if hasattr(inner, "do_polysemous_training"):
        inner.do_polysemous_training = False


def _train_sample(index: Any, n: int, dim: int, budget: int | None, rng: np.random.Generator
                  ) -> np.ndarray:
    """Sorted random ids to train on: 64 per IVF list (at least 10k for PQ), capped by n and by a
    fifth of the memory budget (training may hold a second copy, e.g. SQ residuals)."""
    import faiss

    try:
        nlist = faiss.extract_index_ivf(index).nlist
    except RuntimeError:
        nlist = 1
    want = max(64 * nlist, 256 * MIN_POINTS_PER_CENTROID)
    cap = n if budget is None else max(1, budget // 5 // (4 * dim))
    size = int(min(n, want, cap))
    if size < MIN_POINTS_PER_CENTROID * nlist:
        logger.warning("Training %d lists on %d vectors (%d per list); more memory would allow "
                       "a better quantiser.", nlist, size, size // max(1, nlist))
    return np.sort(rng.choice(n, size=size, replace=False))


def _reserve_lists(index: Any, sample: np.ndarray, n: int) -> None:
    """Reserve each inverted list's capacity from the training sample's list sizes (+10%), so the
    lists do not grow by doubling while filling (which can transiently double their memory)."""
    import faiss

    try:
        ivf = faiss.extract_index_ivf(index)
        lists = faiss.downcast_InvertedLists(ivf.invlists)
    except (RuntimeError, AttributeError):
        return
    if not isinstance(lists, faiss.ArrayInvertedLists):
        return
    x = sample
    outer = faiss.downcast_index(index)
    if isinstance(outer, faiss.IndexPreTransform):
        for i in range(outer.chain.size()):
            x = outer.chain.at(i).apply_py(x)
    _, assign = ivf.quantizer.search(np.ascontiguousarray(x, dtype=np.float32), 1)
    expected = np.bincount(assign.ravel(), minlength=ivf.nlist) * (1.1 * n / len(x))
    for list_no, size in enumerate(expected.astype(np.int64)):
        lists.resize(list_no, int(size))  # std::vector keeps its capacity when shrunk back
        lists.resize(list_no, 0)


def _fill(index: Any, shards: ShardSet, chunk_rows: int) -> None:
    """Add every stored vector with its explicit id (positional ids for non-IVF indexes)."""
    import faiss

    try:
        faiss.extract_index_ivf(index)
        with_ids = True
    except RuntimeError:
        with_ids = False
    for ids, chunk in shards.iter_chunks(chunk_rows):
        if with_ids:
            index.add_with_ids(chunk, ids)
        else:
            if ids[0] != index.ntotal:
                raise IndexFormatError("Shard ids are not dense; a positional index cannot hold them.")
            index.add(chunk)


def _tune(index: Any, shards: ShardSet, n: int, rng: np.random.Generator, *, k: int,
          target_recall: float, count: int | np.ndarray, chunk_rows: int) -> dict[str, Any]:
    """Tune on ``count`` random stored vectors as queries (their own id removed from results),
    or on the given query embeddings (q, dim), e.g. images for an image-to-text index."""
    if not np.isscalar(count):
        queries = np.ascontiguousarray(count, dtype=np.float32)
        scores, truth = exact_search(shards, queries, k, chunk_rows=chunk_rows)
        return tune_search_params(index, queries, truth, k=k, target_recall=target_recall,
                                  vectors=shards.gather, kth_scores=scores[:, k - 1]).as_dict()
    count = int(min(count, n))
    if count == 0 or k >= n:
        return {"params": "", "recall": 1.0, "k": k, "reached": True, "queries": 0}
    qids = np.sort(rng.choice(n, size=count, replace=False))
    queries = shards.gather(qids)
    scores, truth = exact_search(shards, queries, k + 1, chunk_rows=chunk_rows)
    is_self = truth == qids[:, None]
    kth = np.where(is_self[:, :k].any(1), scores[:, k], scores[:, k - 1])
    truth = drop_self(truth, qids, k)
    return tune_search_params(index, queries, truth, k=k, target_recall=target_recall,
                              self_ids=qids, vectors=shards.gather, kth_scores=kth).as_dict()


def _write_outputs(out: Path, index: Any, shards: ShardSet, state: dict[str, Any],
                   info: dict[str, Any]) -> dict[str, Any]:
    import faiss

    index_path = out / storage.INDEX_FILE
    with atomic_path(index_path) as tmp:
        faiss.write_index(index, str(tmp))
    _merge_metadata(out, shards)
    files = {name: storage.file_entry(out / name)
             for name in (storage.INDEX_FILE, storage.METADATA_FILE)}
    settings = state["settings"]
    manifest = {
        "format": storage.FORMAT, "format_version": storage.FORMAT_VERSION,
        "zsvl_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "encoder": {**settings["encoder"], "spec": state.get("model")}, "dim": shards.dim, "metric": "inner_product",
        "factory": info["factory"], "count": shards.count,
        "search_params": info["tuning"]["params"], "tuning": info["tuning"],
        "index_bytes": files[storage.INDEX_FILE]["bytes"], "files": files,
        "shards": {"folder": storage.EMBEDDINGS_DIR, "dtype": "float16",
                   "items": state["shards"]},
        "build": {"options": info["options"], "choice_reason": info["reason"],
                  "corpus": settings["corpus"], "shard_size": settings["shard_size"],
                  "gpu": info["gpu"], "faiss_version": faiss.__version__},
        "corpus_stats": state.get("corpus_stats"), "timings": info["timings"],
    }
    atomic_write_json(out / storage.MANIFEST, manifest)
    return manifest


def _merge_metadata(out: Path, shards: ShardSet) -> None:
    """Concatenate the per-shard metadata files into one Parquet file (streamed, atomic)."""
    import pyarrow.parquet as pq

    writer = None
    with atomic_path(out / storage.METADATA_FILE) as tmp:
        try:
            for info in shards.shards:
                meta = shards.folder / f"meta-{info.index:05d}.parquet"
                if not meta.is_file():
                    raise IndexFormatError(f"{meta} is missing; the shard is incomplete. Rebuild.")
                table = pq.read_table(meta)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table, row_group_size=65536)
        finally:
            if writer is not None:
                writer.close()
