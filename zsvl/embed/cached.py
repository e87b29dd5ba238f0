"""An Encoder that remembers: wraps any Encoder and serves repeated inputs from the disk store.

``CachedEncoder(encoder)`` has the same interface as ``encoder``. Each call keys every input
(``zsvl.embed.keys``), looks all keys up in one batch, sends only the misses (each distinct input
once) to the inner encoder, writes their embeddings, and returns the full result in input order.
Images that fail to load are reported as failures and never cached.

Caching is off when ``enabled=False`` is passed or ``ZSVL_NO_CACHE=1`` is set (then every call
goes straight to the inner encoder).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from zsvl.embed.keys import image_key, text_key
from zsvl.embed.store import EmbeddingStore
from zsvl.errors import CacheError, ImageLoadError, InvalidParameterError
from zsvl.models.base import EncodedImages, Encoder, ImageFailure, OnError

__all__ = ["CachedEncoder", "CacheStats", "cache_disabled_by_env"]

logger = logging.getLogger(__name__)

_FALSE = ("", "0", "false", "no", "off")


def cache_disabled_by_env() -> bool:
    """True when ``$ZSVL_NO_CACHE`` is set to anything but an empty/false value."""
    return os.environ.get("ZSVL_NO_CACHE", "").strip().lower() not in _FALSE


@dataclass
class CacheStats:
    """Counters since creation (or ``reset``): inputs served from disk, inputs not found, and
    distinct inputs actually sent to the inner encoder (misses minus duplicates)."""

    hits: int = 0  # inputs whose embedding came from the store
    misses: int = 0  # inputs not in the store (or not cacheable)
    computed: int = 0  # distinct inputs passed to the inner encoder

    def reset(self) -> None:
        self.hits = self.misses = self.computed = 0


class CachedEncoder:
    """Wrap ``encoder`` so that every text and image is embedded at most once per fingerprint.

    Parameters
    ----------
    encoder : any :class:`zsvl.models.base.Encoder`; available as ``.inner``.
    store : where embeddings live; default ``EmbeddingStore(encoder.fingerprint,
        dim=encoder.embed_dim)`` under ``zsvl_home()/embeddings``. Must match the encoder.
    enabled : False to bypass the cache; None (default) reads ``$ZSVL_NO_CACHE``.
    """

    def __init__(
        self, encoder: Encoder, store: EmbeddingStore | None = None, *, enabled: bool | None = None
    ) -> None:
        if not isinstance(encoder, Encoder):
            raise InvalidParameterError(
                f"CachedEncoder wraps an Encoder (embed_dim, logit_scale, fingerprint, "
                f"encode_texts, encode_images). Got {type(encoder).__name__}."
            )
        self.inner = encoder
        self.enabled = (not cache_disabled_by_env()) if enabled is None else bool(enabled)
        if store is not None and (
            store.fingerprint != encoder.fingerprint or store.dim != encoder.embed_dim
        ):
            raise InvalidParameterError(
                f"The store belongs to fingerprint {store.fingerprint!r} (dim {store.dim}) but the "
                f"encoder is {encoder.fingerprint!r} (dim {encoder.embed_dim}); pass "
                f"EmbeddingStore(encoder.fingerprint, dim=encoder.embed_dim) or store=None."
            )
        self._store = store
        self.stats = CacheStats()

    def __repr__(self) -> str:
        return f"CachedEncoder({self.inner!r}, enabled={self.enabled})"

    def __getattr__(self, name: str) -> Any:
        """Everything else (``device``, ``default_templates``, ``model``, ...) is the inner one's."""
        if name.startswith("_") or name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    @property
    def store(self) -> EmbeddingStore:
        """The embedding store (opened on first use)."""
        if self._store is None:
            self._store = EmbeddingStore(self.inner.fingerprint, dim=self.inner.embed_dim)
        return self._store

    @property
    def embed_dim(self) -> int:
        return self.inner.embed_dim

    @property
    def logit_scale(self) -> float:
        return self.inner.logit_scale

    @property
    def fingerprint(self) -> str:
        return self.inner.fingerprint

    def encode_texts(self, texts: Sequence[str], *, batch_size: int = 256) -> np.ndarray:
        """Embeddings of ``texts``: float32 array of shape (len(texts), embed_dim), input order."""
        if isinstance(texts, str):
            raise InvalidParameterError(
                f"encode_texts takes a sequence of str; got one str {texts!r:.60}. "
                f"Pass [text] to encode a single text."
            )
        _check_batch_size(batch_size)
        texts = list(texts)
        if not self.enabled:
            return self.inner.encode_texts(texts, batch_size=batch_size)
        fp = self.fingerprint
        keys = [text_key(fp, t) for t in texts]
        found, out = self.store.get_many(keys)
        groups = _group_misses(keys, found)
        self._count(found, len(groups))
        if groups:
            todo = [texts[positions[0]] for positions in groups.values()]
            vecs = np.asarray(self.inner.encode_texts(todo, batch_size=batch_size))
            if vecs.shape != (len(todo), self.embed_dim):
                raise CacheError(
                    f"The inner encoder returned shape {vecs.shape} for {len(todo)} texts; "
                    f"expected ({len(todo)}, {self.embed_dim})."
                )
            vecs = vecs.astype(np.float32, copy=False)
            self.store.put_many(list(groups), vecs)
            for vec, positions in zip(vecs, groups.values(), strict=True):
                out[positions] = vec
        return out

    def encode_images(
        self, images: Any, *, batch_size: int = 64, on_error: OnError = "raise"
    ) -> EncodedImages:
        """Embed ``images`` (anything ``expand_inputs`` accepts), serving repeats from the store.

        Returns :class:`EncodedImages` whose ``indices``, ``sources`` and ``failures`` refer to the
        caller's expanded input list; embeddings are float32 (n_ok, embed_dim) in input order.
        """
        if on_error not in ("raise", "skip"):
            raise InvalidParameterError(f"on_error must be 'raise' or 'skip'. Got {on_error!r}.")
        _check_batch_size(batch_size)
        if not self.enabled:
            return self.inner.encode_images(images, batch_size=batch_size, on_error=on_error)
        from zsvl.data.images import describe, expand_inputs

        items = expand_inputs(images)
        sources = [describe(item, i) for i, item in enumerate(items)]
        keys = [_image_key_or_none(self.fingerprint, item) for item in items]
        keyed = [i for i, k in enumerate(keys) if k is not None]
        found = np.zeros(len(items), dtype=bool)
        out = np.zeros((len(items), self.embed_dim), dtype=np.float32)
        if keyed:
            hit, vecs = self.store.get_many([k for k in keys if k is not None])
            found[keyed], out[keyed] = hit, vecs
        groups = _group_misses(keys, found)
        self._count(found, len(groups))
        ok = found.copy()
        failures: list[ImageFailure] = []
        if groups:
            todo = [items[positions[0]] for positions in groups.values()]
            try:
                result = self.inner.encode_images(todo, batch_size=batch_size, on_error=on_error)
            except ImageLoadError as exc:  # name the input by the caller's position, not ours
                raise _renumbered(exc, [positions[0] for positions in groups.values()]) from exc
            _check_inner(result, len(todo), self.embed_dim)
            names, members = list(groups), list(groups.values())
            rows = list(zip(np.asarray(result.indices).tolist(), result.embeddings, strict=True))
            for j, row in rows:
                out[members[j]] = row
                ok[members[j]] = True
            for failure in result.failures:
                for pos in members[failure.index]:
                    failures.append(ImageFailure(pos, sources[pos], failure.error))
            new = [(names[j], row) for j, row in rows if not names[j].startswith("\0")]
            if new:  # keys starting with "\0" are unreadable files: nothing to store
                self.store.put_many([k for k, _ in new], np.stack([r for _, r in new]))
        indices = np.flatnonzero(ok).astype(np.int64)
        failures.sort(key=lambda f: f.index)
        return EncodedImages(out[indices], indices, sources, failures)

    def _count(self, found: np.ndarray, n_computed: int) -> None:
        hits = int(found.sum())
        self.stats.hits += hits
        self.stats.misses += len(found) - hits
        self.stats.computed += n_computed


def _renumbered(exc: ImageLoadError, positions: list[int]) -> ImageLoadError:
    """``exc`` with "(input #k)" of the inner call's list turned into the caller's position."""
    from zsvl.data.decode import image_load_error

    source, reason = getattr(exc, "source", None), getattr(exc, "reason", None)
    match = re.fullmatch(r"(.*) \(input #(\d+)\)", source or "")
    if match is None or reason is None or int(match.group(2)) >= len(positions):
        return exc
    return image_load_error(f"{match.group(1)} (input #{positions[int(match.group(2))]})", reason)


def _check_batch_size(batch_size: Any) -> None:
    """Refuse a bad batch size up front, even when every input is cached and no batch is run."""
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, (int, np.integer))
        or batch_size < 1
    ):
        raise InvalidParameterError(
            f"The 'batch_size' must be an int >= 1 (inputs encoded per forward pass). "
            f"Got {batch_size!r}."
        )


def _group_misses(keys: Sequence[str | None], found: np.ndarray) -> dict[str, list[int]]:
    """Positions of the missing inputs grouped by key, in first-seen order.

    An input without a key (a file that could not be read) gets a private group named
    ``"\\0<position>"`` so it is still passed to the inner encoder but never stored.
    """
    groups: dict[str, list[int]] = {}
    for i, (key, hit) in enumerate(zip(keys, found, strict=True)):
        if not hit:
            groups.setdefault(key if key is not None else f"\0{i}", []).append(i)
    return groups


def _image_key_or_none(fingerprint: str, item: Any) -> str | None:
    """The key of ``item``, or None when its file cannot be read (the inner encoder reports it)."""
    try:
        return image_key(fingerprint, item)
    except OSError as exc:
        logger.debug("not caching %s: %s", item, exc)
        return None


def _check_inner(result: EncodedImages, n: int, dim: int) -> None:
    """Refuse an inner result that does not line up with the ``n`` items it was given."""
    emb = np.asarray(result.embeddings)
    if len(result.sources) != n or emb.ndim != 2 or emb.shape[1:] != (dim,):
        raise CacheError(
            f"The inner encoder expanded {n} single images into {len(result.sources)} inputs "
            f"(embeddings of shape {emb.shape}); expected {n} inputs of dim {dim}. "
            f"Its encode_images must keep one input per item of expand_inputs."
        )
