"""zsvl.embed: batched encoding and the content-addressed embedding cache.

``load_model(spec)`` opens an encoder with the cache in front; ``CachedEncoder(encoder)`` wraps any Encoder so repeated texts and images are read from disk
(``EmbeddingStore``, one SQLite file per encoder fingerprint under ``zsvl_home()/embeddings``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zsvl._lazy import lazy_exports

__all__ = [
    "CachedEncoder",
    "CacheStats",
    "EmbeddingStore",
    "KEY_VERSION",
    "image_key",
    "load_model",
    "text_key",
]

_LAZY = {
    "CachedEncoder": "zsvl.embed.cached",
    "CacheStats": "zsvl.embed.cached",
    "EmbeddingStore": "zsvl.embed.store",
    "KEY_VERSION": "zsvl.embed.keys",
    "image_key": "zsvl.embed.keys",
    "load_model": "zsvl.embed.loading",
    "text_key": "zsvl.embed.keys",
}

if TYPE_CHECKING:  # pragma: no cover
    from zsvl.embed.cached import CachedEncoder, CacheStats
    from zsvl.embed.keys import KEY_VERSION, image_key, text_key
    from zsvl.embed.loading import load_model
    from zsvl.embed.store import EmbeddingStore


__getattr__, __dir__ = lazy_exports("zsvl.embed", globals(), _LAZY, __all__)
