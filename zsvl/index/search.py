"""A built caption index in memory: batched search with vectorised metadata lookup.

``CaptionIndex.load(path, encoder)`` checks the manifest against the encoder and the files
(sizes and checksums, see :func:`zsvl.index.storage.check_files`), memory-maps the FAISS index
and the float16 embedding shards, reads the caption column, and moves the index to the GPUs
when FAISS has them. ``search`` takes text or image embeddings (q, dim) and returns scores, ids
and captions for all queries at once; ``dedupe`` drops captions whose embedding has cosine >= the
threshold with a better one. A result that cannot come from an intact index of unit vectors (a
score outside [-1, 1], an id outside the index) raises ``IndexFormatError`` instead of being
returned.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zsvl.arrays import as_embeddings
from zsvl.errors import IndexFormatError, IndexMismatchError, InvalidParameterError
from zsvl.index import storage
from zsvl.index.backend import set_search_params, stores_float32
from zsvl.index.gpu import apply_search_params, to_gpu

__all__ = ["CaptionIndex", "CaptionHits", "greedy_dedupe", "SCORE_TOLERANCE"]

logger = logging.getLogger(__name__)

# Stored vectors and queries are unit vectors, so an intact index returns cosines in [-1, 1]
# (up to float16 rounding of the stored vectors). Compressed codes (SQ8, PQ) reconstruct vectors
# off the sphere: measured up to 1.074 for PQ4 codes of 16-d vectors, and a reconstruction can be
# no longer than centroid + residual codeword. Beyond these margins the codes are damaged (one
# flipped exponent bit gives scores like 3.7e23).
SCORE_TOLERANCE = {"exact": 0.01, "compressed": 1.0}
GPU_MAX_K = 2048  # FAISS GPU indexes return at most this many neighbours per query


@dataclass(frozen=True)
class CaptionHits:
    """Top-k captions per query, best first.

    scores : float32 (q, k) inner products (cosines); -inf where fewer than k were found.
    ids : int64 (q, k) caption ids; -1 pads.
    captions : list of q lists of str (only the found ones, so rows may be shorter than k).
    """

    scores: np.ndarray
    ids: np.ndarray
    captions: list[list[str]]

    def __len__(self) -> int:
        return len(self.ids)


def greedy_dedupe(embeddings: np.ndarray, valid: np.ndarray, threshold: float) -> np.ndarray:
    """Keep-mask (q, m) that drops every candidate with cosine >= ``threshold`` to a better kept one.

    embeddings : (q, m, dim) candidate embeddings in rank order; valid : (q, m) bool.
    Vectorised over queries; the loop runs over the m ranks.
    """
    sims = np.matmul(embeddings, embeddings.transpose(0, 2, 1))  # (q, m, m)
    keep = valid.copy()
    for j in range(1, keep.shape[1]):
        dup = ((sims[:, j, :j] >= threshold) & keep[:, :j]).any(1)
        keep[:, j] &= ~dup
    return keep


class CaptionIndex:
    """A caption index directory opened for search. Build one with :func:`zsvl.index.build_index`.

    Attributes: ``root``, ``manifest`` (dict), ``index`` (FAISS), ``dim``, ``count``, ``encoder``
    (or None), ``shards`` (the stored float16 vectors).
    """

    def __init__(
        self,
        root: Path,
        manifest: dict[str, Any],
        index: Any,
        metadata: Any,
        shards: Any,
        encoder: Any = None,
        *,
        on_gpu: bool = False,
        verified: str = "none",
        exact_codes: bool = False,
        cpu_index: Any = None,
    ) -> None:
        self.root = root
        self.manifest = manifest
        self.index = index
        self.on_gpu = on_gpu  # the FAISS index lives on GPUs (searches run there)
        # the memory-mapped CPU index, for searches a GPU cannot run (k > GPU_MAX_K)
        self._cpu_index = index if cpu_index is None else cpu_index
        self._tolerance = SCORE_TOLERANCE["exact" if exact_codes else "compressed"]
        self.verified = verified  # what check_files checked at load
        self.shards = shards
        self.encoder = encoder
        self.dim = int(manifest["dim"])
        self.count = int(manifest["count"])
        ids = metadata.column("id").to_numpy()
        self._captions = metadata.column("caption").combine_chunks()
        self._dense = bool(len(ids) == 0 or (ids[0] == 0 and np.all(np.diff(ids) == 1)))
        self._ids = None if self._dense else ids
        self._id_limit = int(ids.max()) + 1 if len(ids) else 0

    @classmethod
    def load(
        cls,
        path: str | Path,
        encoder: Any = None,
        *,
        mmap: bool = True,
        verify: str = "auto",
        use_gpu: bool | None = None,
    ) -> CaptionIndex:
        """Open the index at ``path``.

        encoder : when given, its fingerprint and dimension must match the manifest.
        mmap : memory-map the FAISS index codes instead of reading them into memory.
        verify : "auto" (sizes, plus sha256 checksums of whole files up to 64 MiB in all and of
            a larger index file's header and list sizes), "checksum" (every file's sha256),
            "size" (sizes only), "none".
        use_gpu : search on the GPUs when FAISS has them (None: when available; the index is
            copied into GPU memory). False keeps it on the CPU.
        """
        root = Path(path)
        manifest = storage.read_manifest(root)
        if encoder is not None:
            storage.check_encoder(manifest, encoder, root)
        verified = storage.check_files(manifest, root, verify=verify)
        index = storage.read_faiss_index(root / storage.INDEX_FILE, mmap=mmap)
        if index.ntotal != manifest["count"] or index.d != manifest["dim"]:
            raise IndexMismatchError(
                f"{root / storage.INDEX_FILE} holds {index.ntotal} vectors of dim {index.d} but the "
                f"manifest records {manifest['count']} of dim {manifest['dim']}; rebuild the index."
            )
        params = manifest.get("search_params", "")
        set_search_params(index, params)
        exact = stores_float32(index)
        cpu_index = index
        index, on_gpu = _to_gpu_for_search(cpu_index, params, use_gpu)
        metadata = storage.read_metadata(root, manifest["count"])
        shards = storage.open_shards(manifest, root)
        if shards.count != manifest["count"]:
            raise IndexFormatError(
                f"{root}: the embedding shards hold {shards.count} vectors, the manifest "
                f"{manifest['count']}; rebuild the index."
            )
        return cls(
            root,
            manifest,
            index,
            metadata,
            shards,
            encoder,
            on_gpu=on_gpu,
            verified=verified,
            exact_codes=exact,
            cpu_index=cpu_index,
        )

    def __len__(self) -> int:
        return self.count

    def __repr__(self) -> str:
        return (
            f"CaptionIndex({str(self.root)!r}, count={self.count}, dim={self.dim}, "
            f"factory={self.manifest['factory']!r}, params={self.search_params!r})"
        )

    @property
    def search_params(self) -> str:
        return self.manifest.get("search_params", "")

    # -- lookups -------------------------------------------------------------------------
    def captions(self, ids: np.ndarray) -> list[list[str]]:
        """Captions of ids (q, k) as q lists, skipping ids < 0; one vectorised take."""
        import pyarrow as pa

        ids = np.asarray(ids, dtype=np.int64)
        ids2 = ids.reshape(len(ids), -1) if ids.ndim else ids.reshape(1, 1)
        valid = ids2 >= 0
        rows = ids2[valid] if self._ids is None else np.searchsorted(self._ids, ids2[valid])
        flat = self._captions.take(pa.array(rows, pa.int64())).to_pylist()
        counts = valid.sum(1)
        out, start = [], 0
        for c in counts:
            out.append(flat[start : start + c])
            start += c
        return out

    def embeddings(self, ids: np.ndarray) -> np.ndarray:
        """Stored embeddings of ``ids`` (any shape) as float32 (*ids.shape, dim); zeros for -1.
        These are the exact (float16) vectors the index was built from, never re-encoded."""
        ids = np.asarray(ids, dtype=np.int64)
        return self.shards.gather(ids).reshape(*ids.shape, self.dim)

    # -- search --------------------------------------------------------------------------
    def search(
        self,
        queries: Any,
        k: int = 10,
        *,
        dedupe: float | None = None,
        fetch_factor: int = 3,
        batch_size: int = 4096,
        params: str | None = None,
    ) -> CaptionHits:
        """Top-``k`` captions for each query embedding (q, dim), text or image.

        dedupe : cosine threshold (e.g. 0.94); near-duplicate captions below a better one are
            dropped, searching ``k * fetch_factor`` candidates (more, up to 64 k, for queries
            left short) to fill k.
        params : FAISS search parameters for this call (default: the tuned ones).
        """
        if not isinstance(k, int) or k < 1:
            raise InvalidParameterError(f"k must be an int >= 1. Got {k!r}.")
        if dedupe is not None and not -1 <= dedupe <= 1:
            raise InvalidParameterError(
                f"dedupe must be a cosine in [-1, 1] or None. Got {dedupe!r}."
            )
        q = as_embeddings(queries, dim=self.dim, name="queries")
        if params is not None:
            self._apply(params)
        try:
            fetch = k if dedupe is None else min(k * max(1, fetch_factor), max(k, self.count))
            parts = [
                self._search_batch(q[i : i + batch_size], k, fetch, dedupe)
                for i in range(0, len(q), batch_size)
            ]
        finally:
            if params is not None:
                self._apply(self.search_params)
        scores = np.concatenate([p[0] for p in parts]) if parts else np.zeros((0, k), np.float32)
        ids = np.concatenate([p[1] for p in parts]) if parts else np.zeros((0, k), np.int64)
        return CaptionHits(scores=scores, ids=ids, captions=self.captions(ids))

    def _search_batch(
        self, q: np.ndarray, k: int, fetch: int, dedupe: float | None
    ) -> tuple[np.ndarray, np.ndarray]:
        scores, ids = self._checked_search(q, fetch)
        if dedupe is not None:
            scores, ids = self._dedupe(q, scores, ids, k, dedupe)
        if ids.shape[1] < k:  # fewer vectors than k
            pad = k - ids.shape[1]
            ids = np.pad(ids, ((0, 0), (0, pad)), constant_values=-1)
            scores = np.pad(scores, ((0, 0), (0, pad)), constant_values=-np.inf)
        return scores[:, :k].astype(np.float32), ids[:, :k]

    def _dedupe(
        self, q: np.ndarray, scores: np.ndarray, ids: np.ndarray, k: int, threshold: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Drop near-duplicates; rows left with fewer than k are searched again with 4x the
        candidates (up to 64 k), so a corpus full of repeated captions still fills k."""
        keep = greedy_dedupe(self.embeddings(ids), ids >= 0, threshold)
        order = np.argsort(~keep, axis=1, kind="stable")
        kept = np.take_along_axis(keep, order, 1)
        ids = np.where(kept, np.take_along_axis(ids, order, 1), -1)[:, :k]
        scores = np.where(ids >= 0, np.take_along_axis(scores, order, 1)[:, :k], -np.inf)
        fetch = order.shape[1]
        short = (kept.sum(1) < k) & (fetch < min(64 * k, self.count))
        if short.any():
            more = min(4 * fetch, 64 * k, self.count)
            s2, i2 = self._checked_search(q[short], more)
            s2, i2 = self._dedupe(q[short], s2, i2, k, threshold)
            width = max(ids.shape[1], i2.shape[1])
            ids = np.pad(ids, ((0, 0), (0, width - ids.shape[1])), constant_values=-1)
            scores = np.pad(scores, ((0, 0), (0, width - scores.shape[1])), constant_values=-np.inf)
            ids[short, : i2.shape[1]], scores[short, : s2.shape[1]] = i2, s2
        return scores, ids

    def _apply(self, params: str) -> None:
        """Set search parameters on the index searched and on its CPU copy."""
        apply_search_params(self.index, params, on_gpu=self.on_gpu)
        if self._cpu_index is not self.index:
            apply_search_params(self._cpu_index, params, on_gpu=False)

    def _checked_search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """FAISS search of (q, dim) unit queries; (scores, ids) of shape (q, k), -inf / -1 pads.

        Raises IndexFormatError when a result cannot come from an intact index: a score that is
        not a cosine (outside [-1, 1] by more than ``SCORE_TOLERANCE`` for the index's codes, or
        NaN) or an id that the index does not hold.
        """
        index = self._cpu_index if self.on_gpu and k > GPU_MAX_K else self.index
        scores, ids = index.search(np.ascontiguousarray(q), k)
        found = ids >= 0
        bad_score = found & ~(np.abs(scores) <= 1 + self._tolerance)  # NaN fails too
        bad_id = (ids < -1) | (found & (ids >= self._id_limit))
        if bad_score.any() or bad_id.any():
            what = (
                f"a score of {float(scores[bad_score][0]):.4g} for unit vectors"
                if bad_score.any()
                else f"the id {int(ids[bad_id][0])} (the index holds {self.count} captions)"
            )
            raise IndexFormatError(
                f"{self.root / storage.INDEX_FILE} returned {what}; the file is damaged "
                f"(checked at load: {self.verified}). Check it with `zsvl index info "
                f"{self.root} --verify checksum` and rebuild the index."
            )
        return np.where(found, scores, -np.inf).astype(np.float32), ids

    def search_texts(self, texts: Sequence[str], k: int = 10, **kwargs: Any) -> CaptionHits:
        """Encode ``texts`` with the index's encoder and search them."""
        return self.search(self._need_encoder().encode_texts(list(texts)), k, **kwargs)

    def search_images(self, images: Any, k: int = 10, **kwargs: Any) -> CaptionHits:
        """Encode ``images`` (paths, arrays, PIL) with the index's encoder and search them."""
        return self.search(self._need_encoder().encode_images(images).embeddings, k, **kwargs)

    def _need_encoder(self) -> Any:
        if self.encoder is None:
            raise InvalidParameterError(
                "This CaptionIndex was loaded without an encoder; pass embeddings to search() or "
                "load it with CaptionIndex.load(path, encoder)."
            )
        return self.encoder


def _to_gpu_for_search(index: Any, params: str, use_gpu: bool | None) -> tuple[Any, bool]:
    """The index copied to the GPUs with the tuned ``params`` applied there, or the CPU index
    when there is no GPU, the type cannot move, or the GPU refuses the parameters."""
    gpu_index, on_gpu = to_gpu(index, use_gpu)
    if not on_gpu:
        return index, False
    try:
        apply_search_params(gpu_index, params, on_gpu=True)
    except RuntimeError as exc:  # e.g. an nprobe beyond the GPU's limit
        logger.warning("Searching on the CPU: the GPU index refuses %r (%s).", params, exc)
        return index, False
    return gpu_index, True
