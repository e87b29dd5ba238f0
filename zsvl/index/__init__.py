"""Caption indexes: build (resumable, auto-chosen, recall-tuned), store, load and search.

``build_index(corpus, encoder, out)`` writes an index directory; ``CaptionIndex.load(out, encoder)``
opens it for batched search. Heavy imports (faiss, pyarrow) happen on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zsvl._lazy import lazy_exports

__all__ = [
    "CaptionIndex",
    "CaptionHits",
    "build_index",
    "build_from_shards",
    "choose_factory",
    "load_index",
    "index_info",
]

_LAZY = {
    "CaptionIndex": "zsvl.index.search",
    "CaptionHits": "zsvl.index.search",
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
    from zsvl.index.search import CaptionHits, CaptionIndex


__getattr__, __dir__ = lazy_exports("zsvl.index", globals(), _LAZY, __all__)
