"""zsvl.embed: batched encoding and the content-addressed embedding cache.

``CachedEncoder(encoder)`` wraps any Encoder so repeated texts and images are read from disk
(``EmbeddingStore``, one SQLite file per encoder fingerprint under ``zsvl_home()/embeddings``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "CachedEncoder",
    "CacheStats",
    "EmbeddingStore",
    "KEY_VERSION",
    "image_key",
    "text_key",
]

_LAZY = {
    "CachedEncoder": "zsvl.embed.cached",
    "CacheStats": "zsvl.embed.cached",
    "EmbeddingStore": "zsvl.embed.store",
    "KEY_VERSION": "zsvl.embed.keys",
    "image_key": "zsvl.embed.keys",
    "text_key": "zsvl.embed.keys",
}

if TYPE_CHECKING:  # pragma: no cover
    from zsvl.embed.cached import CachedEncoder, CacheStats
    from zsvl.embed.keys import KEY_VERSION, image_key, text_key
    from zsvl.embed.store import EmbeddingStore


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'zsvl.embed' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
