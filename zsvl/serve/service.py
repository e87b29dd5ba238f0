"""What the server does, without the web stack: indexes, classifiers, batched model calls.

A :class:`Service` holds one encoder, the loaded caption indexes (by name), saved classifiers
(by name), an LRU of zero-shot/descriptor classifiers fitted on request, and two
:class:`MicroBatcher` s sharing one model thread: ``search`` (text encoding + FAISS search of
many queries at once) and ``images`` (one image-tower forward for the images of many requests).
Every answer is the library's answer for the same input: ``CaptionIndex.search``,
``ZeroShotClassifier`` / ``DescriptorClassifier`` ``predict_proba`` / ``explain`` and
``VocabularyFreeClassifier.predict_words``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zsvl.serve.batching import MicroBatcher
from zsvl.serve.limits import Limits, RequestError
from zsvl.serve.threads import ThreadPolicy, set_model_threads

__all__ = ["BatchConfig", "Service", "SearchItem"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchConfig:
    """Micro-batching settings."""

    enabled: bool = True  # False: one model call per request (max_batch 1)
    max_batch: int = 64  # queries / images per model call
    max_wait_ms: float = 2.0  # how long a lone request waits for company


@dataclass(frozen=True)
class SearchItem:
    """One query: index name, text (str) or embedding (dim,), k, near-duplicate threshold."""

    index: str
    query: Any
    k: int
    dedupe: float | None = None


class _Metadata:
    """Extra per-caption columns of an index (``record``, ``source_id``) looked up by id."""

    def __init__(self, root: Path) -> None:
        import pyarrow.parquet as pq

        from zsvl.index.storage import METADATA_FILE

        path = root / METADATA_FILE
        names = pq.ParquetFile(path).schema_arrow.names
        self.columns = [c for c in ("record", "source_id") if c in names]
        table = pq.read_table(path, columns=["id", *self.columns], memory_map=True)
        self.ids = table.column("id").to_numpy()
        self.values = {c: table.column(c).to_pylist() for c in self.columns}

    def lookup(self, ids: list[int]) -> list[dict[str, Any]]:
        rows = np.searchsorted(self.ids, np.asarray(ids, dtype=np.int64))
        return [{c: self.values[c][r] for c in self.columns} for r in rows]


def _plain_name(name: str, what: str) -> str:
    """A packaged set's name (letters, digits, _ - and one ':'); never a path on the server."""
    if not re.fullmatch(r"[A-Za-z0-9_-]+(:[A-Za-z0-9_-]+)?", name):
        raise RequestError(
            422,
            f"bad_{what}",
            f"{what} must name a packaged set (e.g. "
            f"'imagenet7', 'toy_fine_cbd'), not a path. Got {name!r}.",
        )
    return name


class Service:
    """The model, indexes and classifiers behind the HTTP API.

    encoder : a zsvl Encoder (every index must have been built with it).
    indexes : name -> ``CaptionIndex`` loaded with ``encoder``.
    classifiers : name -> fitted zsvl classifier (saved ones), using ``encoder``.
    threads : intra-op threads of torch and FAISS, set process-wide when the model thread
        starts; None keeps the process's setting. ``zsvl serve`` passes
        :func:`~zsvl.serve.threads.default_threads` unless told otherwise.
    long_call_threads : threads for the batches that took >= 50 ms on ``threads``
        (:class:`~zsvl.serve.threads.ThreadPolicy`); None: ``threads`` for every call.
        ``zsvl serve`` passes every usable core unless ``--threads`` is given.
    """

    def __init__(
        self,
        encoder: Any,
        indexes: dict[str, Any] | None = None,
        *,
        classifiers: dict[str, Any] | None = None,
        limits: Limits | None = None,
        batching: BatchConfig | None = None,
        model: str | None = None,
        cache_size: int = 32,
        threads: int | None = None,
        long_call_threads: int | None = None,
    ) -> None:
        self.encoder = encoder
        self.indexes = dict(indexes or {})
        self.classifiers = dict(classifiers or {})
        self.limits = limits = limits or Limits()
        self.batching = batching = batching or BatchConfig()
        self.model = model
        self.started = time.time()
        self._metadata = {name: _Metadata(ix.root) for name, ix in self.indexes.items()}
        self._fitted: OrderedDict[tuple, Any] = OrderedDict()
        self._cache_size = cache_size
        self._vocab_free: dict[str, Any] = {}
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1 or None. Got {threads}.")
        self.threads = threads
        self.thread_policy = (
            None if threads is None else ThreadPolicy(threads, max(threads, long_call_threads or 0))
        )
        self.executor = ThreadPoolExecutor(
            1,
            thread_name_prefix="zsvl-model",
            initializer=None if threads is None else functools.partial(set_model_threads, threads),
        )
        size = batching.max_batch if batching.enabled else 1
        wait = batching.max_wait_ms / 1000 if batching.enabled else 0.0
        self.search_batcher = MicroBatcher(
            self._search_batch,
            max_batch=size,
            max_wait_s=wait,
            max_queue=limits.max_queue,
            executor=self.executor,
            name="search",
        )
        self.image_batcher = MicroBatcher(
            self._embed_batch,
            max_batch=size,
            max_wait_s=wait,
            max_queue=limits.max_queue,
            executor=self.executor,
            name="images",
        )

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        self.search_batcher.start()
        self.image_batcher.start()

    async def stop(self) -> None:
        await self.search_batcher.stop()
        await self.image_batcher.stop()

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def run_model(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(*args)`` on the model thread (serial with the batches), off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    # -- lookups -------------------------------------------------------------------------
    def index_name(self, name: str | None) -> str:
        """``name``, or the first loaded index; 404 for an unknown or missing index."""
        if not self.indexes:
            raise RequestError(
                404, "no_index", "No caption index is loaded; start the server with --index DIR."
            )
        if name is None or name == "":
            return next(iter(self.indexes))
        if name not in self.indexes:
            raise RequestError(
                404, "unknown_index", f"Unknown index {name!r}; loaded: {', '.join(self.indexes)}."
            )
        return name

    def describe_indexes(self) -> list[dict[str, Any]]:
        return [
            {
                "name": name,
                "path": str(ix.root),
                "count": ix.count,
                "dim": ix.dim,
                "factory": ix.manifest.get("factory"),
                "search_params": ix.search_params,
                "metadata_columns": ["id", "caption", *self._metadata[name].columns],
                "manifest": ix.manifest,
            }
            for name, ix in self.indexes.items()
        ]

    def describe_classifiers(self) -> list[dict[str, Any]]:
        return [
            {
                "name": name,
                "kind": type(clf).__name__,
                "classes": list(clf.classes_),
                "explains": hasattr(clf, "explain"),
            }
            for name, clf in self.classifiers.items()
        ]

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "model": self.model,
            "fingerprint": self.encoder.fingerprint,
            "indexes": list(self.indexes),
            "classifiers": list(self.classifiers),
            "uptime_s": round(time.time() - self.started, 1),
            "threads": self.threads,
            "thread_policy": None if self.thread_policy is None else self.thread_policy.to_dict(),
            "batching": {
                "enabled": self.batching.enabled,
                "max_batch": self.search_batcher.max_batch,
                "max_wait_ms": self.batching.max_wait_ms if self.batching.enabled else 0,
                "search": self.search_batcher.stats.to_dict(),
                "images": self.image_batcher.stats.to_dict(),
            },
        }

    # -- batch functions (model thread) --------------------------------------------------
    def _threads(self, kind: str, size: int) -> Any:
        """The thread policy's context for a model call (nothing when threads are not managed)."""
        if self.thread_policy is None:
            return contextlib.nullcontext()
        return self.thread_policy.call(kind, size)

    def _search_batch(self, items: list[SearchItem]) -> list[list[dict[str, Any]]]:
        """One text-encoder call for every text query, one FAISS search per (index, dedupe)."""
        with self._threads("search", len(items)):
            return self._search(items)

    def _search(self, items: list[SearchItem]) -> list[list[dict[str, Any]]]:
        dim = self.encoder.embed_dim
        vectors = np.zeros((len(items), dim), dtype=np.float32)
        text_rows = [i for i, it in enumerate(items) if isinstance(it.query, str)]
        texts = [items[i].query for i in text_rows]
        if texts:  # one call: on CPU the encoder splits mixed lengths into a few forwards
            vectors[text_rows] = self.encoder.encode_texts(texts)
        for i, it in enumerate(items):
            if not isinstance(it.query, str):
                vectors[i] = it.query
        groups: dict[tuple[str, float | None], list[int]] = {}
        for i, it in enumerate(items):
            groups.setdefault((it.index, it.dedupe), []).append(i)
        out: list[list[dict[str, Any]]] = [[] for _ in items]
        for (name, dedupe), rows in groups.items():
            kmax = max(items[i].k for i in rows)
            res = self.indexes[name].search(vectors[rows], kmax, dedupe=dedupe)
            for j, i in enumerate(rows):
                ids = [int(x) for x in res.ids[j, : items[i].k] if x >= 0]
                meta = self._metadata[name].lookup(ids)
                out[i] = [
                    {"id": id_, "caption": cap, "score": float(score), **m}
                    for id_, cap, score, m in zip(
                        ids, res.captions[j], res.scores[j], meta, strict=False
                    )
                ]
        return out

    def _embed_batch(self, images: list[Any]) -> list[np.ndarray]:
        """One image-tower forward for PIL images from any number of requests -> (dim,) each."""
        with self._threads("images", len(images)):
            emb = self.encoder.encode_images(images, batch_size=max(len(images), 1)).embeddings
        return list(emb)

    # -- operations (event loop) ---------------------------------------------------------
    async def search(self, items: list[SearchItem]) -> list[list[dict[str, Any]]]:
        return list(await asyncio.gather(*(self.search_batcher.submit(it) for it in items)))

    async def embed_images(self, images: list[Any]) -> np.ndarray:
        rows = await asyncio.gather(*(self.image_batcher.submit(im) for im in images))
        return np.stack(rows).astype(np.float32, copy=False)

    async def search_images(
        self, index: str, images: list[Any], k: int, dedupe: float | None = None
    ) -> list[list[dict[str, Any]]]:
        X = await self.embed_images(images)
        return await self.search([SearchItem(index, x, k, dedupe) for x in X])

    async def classify(
        self,
        images: list[Any],
        *,
        classes: list[str] | None = None,
        classifier: str | None = None,
        templates: str | None = None,
        descriptors: str | None = None,
        top_k: int = 5,
        explain: int = 3,
    ) -> dict[str, Any]:
        """Labels, probabilities, top-k and (for descriptor methods) explanations per image."""
        X = await self.embed_images(images)
        return await self.run_model(
            self._classify, X, classes, classifier, templates, descriptors, top_k, explain
        )

    async def name(self, index: str, images: list[Any], top_k: int = 5) -> list[dict[str, Any]]:
        """Vocabulary-free names (CaSED) with their candidates and the captions behind them."""
        X = await self.embed_images(images)
        return await self.run_model(self._name, index, X, top_k)

    # -- model-thread helpers ------------------------------------------------------------
    def _classifier(
        self,
        classes: list[str] | None,
        classifier: str | None,
        templates: str | None,
        descriptors: str | None,
    ) -> tuple[Any, dict]:
        from zsvl.errors import ZsvlError

        if classifier is not None:
            if classifier not in self.classifiers:
                known = ", ".join(self.classifiers) or "none (start with --classifier FILE)"
                raise RequestError(
                    404,
                    "unknown_classifier",
                    f"Unknown classifier {classifier!r}; loaded: {known}.",
                )
            clf = self.classifiers[classifier]
            return clf, {"name": classifier, "kind": type(clf).__name__}
        key = (tuple(classes or ()), templates, descriptors)
        if key in self._fitted:
            self._fitted.move_to_end(key)
            return self._fitted[key]
        try:
            if descriptors is not None:
                from zsvl.methods.descriptors import DescriptorClassifier
                from zsvl.text.descriptors import packaged_descriptors

                path = packaged_descriptors(_plain_name(descriptors, "descriptors"))
                clf = DescriptorClassifier(self.encoder, path, classes).fit()
                info: dict[str, Any] = {"kind": "DescriptorClassifier", "descriptors": descriptors}
            else:
                from zsvl.methods.zeroshot import ZeroShotClassifier

                if templates is not None and not any(p in templates for p in ("{}", "{c}")):
                    _plain_name(templates, "templates")  # a set name, never a server path
                clf = ZeroShotClassifier(self.encoder, classes, templates=templates).fit()
                info = {"kind": "ZeroShotClassifier", "templates": list(clf.templates_)}
        except RequestError:
            raise
        except ZsvlError as exc:
            raise RequestError(422, "bad_classifier", str(exc)) from None
        self._fitted[key] = (clf, info)
        if len(self._fitted) > self._cache_size:
            self._fitted.popitem(last=False)
        return clf, info

    def _classify(
        self,
        X: np.ndarray,
        classes: list[str] | None,
        classifier: str | None,
        templates: str | None,
        descriptors: str | None,
        top_k: int,
        explain: int,
    ) -> dict[str, Any]:
        clf, info = self._classifier(classes, classifier, templates, descriptors)
        names = list(clf.classes_)
        proba = clf.predict_proba(X)
        scores = clf.decision_function(X)
        from zsvl.methods.base import top_k as best

        idx, top_p = best(proba, top_k)
        explanations = clf.explain(X, top=explain) if hasattr(clf, "explain") and explain else None
        results = []
        for i in range(len(X)):
            label = int(idx[i, 0])
            rec = {
                "label": names[label],
                "probability": float(top_p[i, 0]),
                "score": float(scores[i, label]),
                "top_k": [
                    {
                        "label": names[int(j)],
                        "probability": float(p),
                        "score": float(scores[i, int(j)]),
                    }
                    for j, p in zip(idx[i], top_p[i], strict=True)
                ],
                "probabilities": [float(p) for p in proba[i]],
            }
            if explanations is not None:
                e = explanations[i]
                rec["explanation"] = {
                    "label": e.classname,
                    "score": float(e.score),
                    "evidence": [
                        {
                            "descriptor": ev.descriptor,
                            "text": ev.text,
                            "similarity": float(ev.similarity),
                            "contribution": float(ev.contribution),
                        }
                        for ev in e.evidence
                    ],
                }
            results.append(rec)
        return {"classifier": info, "classes": names, "results": results}

    def _name(self, index: str, X: np.ndarray, top_k: int) -> list[dict[str, Any]]:
        from zsvl.methods.vocab_free import VocabularyFreeClassifier

        if index not in self._vocab_free:
            self._vocab_free[index] = VocabularyFreeClassifier(
                self.encoder, self.indexes[index]
            ).fit()
        res = self._vocab_free[index].predict_words(X)
        return [
            {
                "label": label,
                "probability": float(score),
                "candidates": [{"label": n, "probability": float(p)} for n, p in cands[:top_k]],
                "captions": caps,
            }
            for label, score, cands, caps in zip(
                res.labels, res.scores, res.candidates, res.captions, strict=True
            )
        ]
