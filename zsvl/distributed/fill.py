"""Fill on Ray: workers fill part indexes from the one trained empty index, the driver merges.

The driver writes the trained, empty index to ``<out>/parts/trained.faiss``; each Ray task reads
it, adds the vectors of a contiguous run of shards with their ids and writes
``parts/part-<p>.faiss`` atomically. Tasks are retried by Ray when their worker dies
(``max_retries``); a retried part overwrites the same file, so every caption lands in exactly
one part. The parts are merged in id order: in memory with ``merge_from`` (small indexes), or with
:func:`faiss.contrib.ondisk.merge_ondisk` into ``<out>/index.ivfdata`` (large IVF indexes, which
then never need to fit in RAM). Index types FAISS cannot merge (HNSW) are filled on the driver.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from zsvl._atomic import atomic_path
from zsvl._progress import progress_bar, progress_line
from zsvl.index.shards import ShardInfo, ShardSet

__all__ = ["fill_on_ray", "fill_part", "merge_parts", "ONDISK_FILE", "MEMORY_MERGE_MAX_BYTES"]

logger = logging.getLogger(__name__)

ONDISK_FILE = "index.ivfdata"
MEMORY_MERGE_MAX_BYTES = 4 << 30  # merge="auto" merges on disk above this many part bytes


def _is_ivf(index: Any) -> bool:
    import faiss

    try:
        faiss.extract_index_ivf(index)
        return True
    except RuntimeError:
        return False


def _mergeable(index: Any) -> bool:
    import faiss

    inner = faiss.downcast_index(index)
    if isinstance(inner, faiss.IndexPreTransform):
        inner = faiss.downcast_index(inner.index)
    return _is_ivf(index) or isinstance(inner, faiss.IndexFlatCodes)


def fill_part(
    trained: str,
    folder: str,
    shards: list[dict[str, Any]],
    dim: int,
    chunk_rows: int,
    out: str,
    part: int,
    hook: Callable[[str, int], None] | None = None,
    skip: np.ndarray | None = None,
) -> dict[str, Any]:
    """Ray task body: add the given shards to a copy of the trained index, write it to ``out``."""
    import os
    import socket

    import faiss

    if hook is not None:
        hook("fill", part)
    start = time.perf_counter()
    index = faiss.read_index(trained)
    with_ids = _is_ivf(index)
    for ids, chunk in ShardSet(folder, [ShardInfo(**s) for s in shards], dim).iter_chunks(
        chunk_rows
    ):
        if with_ids:
            if skip is not None and len(skip):  # the build's held-out tuning queries
                keep = ~np.isin(ids, skip, assume_unique=True)
                ids, chunk = ids[keep], chunk[keep]
            index.add_with_ids(np.ascontiguousarray(chunk), np.ascontiguousarray(ids))
        else:
            index.add(chunk)  # positional ids; parts are merged in id order
    with atomic_path(Path(out)) as tmp:
        faiss.write_index(index, str(tmp))
    return {
        "part": part,
        "path": out,
        "ntotal": int(index.ntotal),
        "worker": f"{socket.gethostname()}:{os.getpid()}",
        "seconds": time.perf_counter() - start,
    }


def _groups(shards: ShardSet, parts: int) -> list[list[dict[str, Any]]]:
    """Contiguous runs of shards with about equal row counts, in id order."""
    rows = np.cumsum([s.rows for s in shards.shards])
    cuts = np.searchsorted(rows, rows[-1] * np.arange(1, parts) / parts, side="left") + 1
    bounds = [
        0,
        *sorted(set(int(c) for c in cuts if 0 < c < len(shards.shards))),
        len(shards.shards),
    ]
    return [
        [s.as_dict() for s in shards.shards[a:b]] for a, b in zip(bounds, bounds[1:], strict=False)
    ]


def merge_parts(index: Any, paths: list[str], how: str, ondisk_path: Path) -> Any:
    """Merge the filled parts (in order) into the trained empty ``index``; returns it."""
    import faiss

    if how == "ondisk":
        from faiss.contrib.ondisk import merge_ondisk

        merge_ondisk(index, paths, str(ondisk_path.resolve()))
        return index
    for path in paths:
        part = faiss.read_index(path)
        index.merge_from(part, 0)
        del part
    return index


def fill_on_ray(
    engine: Any, index: Any, shards: ShardSet, chunk_rows: int, skip: np.ndarray | None = None
) -> Any:
    """Fill the trained empty CPU ``index`` with every vector of ``shards`` but the ``skip`` ids
    (the build's held-out tuning queries, added after tuning) on the cluster."""
    import faiss

    from zsvl.distributed.cluster import RayClusterError

    if not _mergeable(index):
        logger.info("FAISS cannot merge %s indexes; filling on the driver.", type(index).__name__)
        for _ids, chunk in shards.iter_chunks(chunk_rows):
            index.add(chunk)  # positional ids in id order; nothing is held out of such an index
        return index
    ray = engine.connect()
    root = shards.folder.parent.resolve()
    parts_dir = root / "parts"
    parts_dir.mkdir(exist_ok=True)
    trained = parts_dir / "trained.faiss"
    with atomic_path(trained) as tmp:
        faiss.write_index(index, str(tmp))
    n = engine.fill_parts or max(1, int(ray.cluster_resources().get("CPU", 1)))
    groups = _groups(shards, min(n, len(shards.shards)))
    task = ray.remote(fill_part).options(num_cpus=1, max_retries=5)
    folder = str(shards.folder.resolve())
    skip_ref = ray.put(skip)
    refs = [
        task.remote(
            str(trained),
            folder,
            g,
            shards.dim,
            chunk_rows,
            str(parts_dir / f"part-{p:05d}.faiss"),
            p,
            engine.hook,
            skip_ref,
        )
        for p, g in enumerate(groups)
    ]
    results: dict[int, dict[str, Any]] = {}
    start = time.perf_counter()
    with progress_bar(total=len(refs), desc="fill", unit="part") as bar:
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            try:
                r = ray.get(ready[0])
            except ray.exceptions.RayError as exc:
                raise RayClusterError(f"Filling a part index on the cluster failed: {exc}") from exc
            results[r["part"]] = r
            bar.update(1)
            progress_line(
                f"part {r['part']}: {r['ntotal']} vectors on {r['worker']} in {r['seconds']:.1f} s"
            )
    fill_s = time.perf_counter() - start
    paths = [results[p]["path"] for p in range(len(groups))]
    filled = sum(results[p]["ntotal"] for p in range(len(groups)))
    expected = shards.count - (0 if skip is None else len(skip))
    if filled != expected:
        raise RayClusterError(
            f"The parts hold {filled} vectors but the shards {expected}; run the build again."
        )
    how = engine.merge
    if how == "auto":
        size = sum(Path(p).stat().st_size for p in paths)
        how = "ondisk" if size > MEMORY_MERGE_MAX_BYTES and _is_ivf(index) else "memory"
    if how == "ondisk" and not _is_ivf(index):
        how = "memory"
    start = time.perf_counter()
    # merge into the trained index as read back, the same FAISS class as the parts
    index = merge_parts(faiss.read_index(str(trained)), paths, how, root / ONDISK_FILE)
    logger.info(
        "Filled %d parts in %.1f s, merged (%s) in %.1f s.",
        len(paths),
        fill_s,
        how,
        time.perf_counter() - start,
    )
    if index.ntotal != expected:
        raise RayClusterError(
            f"The merged index holds {index.ntotal} vectors, expected "
            f"{expected}; run the build again."
        )
    shutil.rmtree(parts_dir, ignore_errors=True)
    return index
