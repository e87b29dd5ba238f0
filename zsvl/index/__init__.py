"""Caption indexes: build (resumable, auto-chosen, recall-tuned), store, load and search.

``build_index(corpus, encoder, out)`` writes an index directory; ``CaptionIndex.load(out, encoder)``
opens it for batched search. Heavy imports (faiss, pyarrow) happen on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "CaptionIndex",
    "SearchResult",
    "build_index",
    "build_from_shards",
    "choose_factory",
    "load_index",
    "index_info",
]

_LAZY = {
    "CaptionIndex": "zsvl.index.search",
    "SearchResult": "zsvl.index.search",
    "build_index": "zsvl.index.build",
    "build_from_shards": "zsvl.index.build",
    "choose_factory": "zsvl.index.choose",
    "load_index": "zsvl.index.recipe",
    "index_info": "zsvl.index.recipe",
}

if TYPE_CHECKING:  # pragma: no cover
    from zsvl.index.build import build_from_shards, build_index
    from zsvl.index.choose import choose_factory
    from zsvl.index.recipe import index_info, load_index
    from zsvl.index.search import CaptionIndex, SearchResult


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'zsvl.index' has no attribute {name!r}")
