"""On-disk cache of LLM requests and responses, so that any run can be replayed offline.

One JSON file per request under ``<root>/<key[:2]>/<key>.json``. The key is the SHA-256 of the
canonical JSON of the exact request (messages, model and every sampling parameter); the entry
stores that request, the raw answer text, the token usage and, once a caller has parsed the
answer, the parsed result. Writes are atomic (temporary file, fsync, rename). An entry that does
not parse or whose request does not hash to its key is reported and treated as missing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

from zsvl._atomic import atomic_write_text

__all__ = ["LLMCache", "request_key", "default_cache_dir"]

logger = logging.getLogger(__name__)

CACHE_FORMAT = 1  # bump when the entry layout changes


def default_cache_dir() -> Path:
    """``$ZSVL_HOME/llm``."""
    from zsvl.paths import zsvl_home

    return zsvl_home() / "llm"


def request_key(request: dict[str, Any]) -> str:
    """SHA-256 hex digest of the canonical JSON of ``request`` (sorted keys, no whitespace)."""
    blob = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"zsvl-llm-{CACHE_FORMAT}:{blob}".encode()).hexdigest()


class LLMCache:
    """Request/response store. ``get`` returns the entry dict or None; ``put`` writes one."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, request: dict[str, Any]) -> dict[str, Any] | None:
        """The cached entry for ``request`` (keys: request, text, usage, parsed, ...), or None."""
        key = request_key(request)
        path = self.path(key)
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            logger.warning("Ignoring a corrupted LLM cache entry %s (%s); asking again.", path, exc)
            return None
        if not isinstance(entry, dict) or request_key(entry.get("request", {})) != key:
            logger.warning("Ignoring LLM cache entry %s: its request does not match its key.", path)
            return None
        if not isinstance(entry.get("text"), str):
            logger.warning("Ignoring LLM cache entry %s: it holds no answer text.", path)
            return None
        return entry

    def put(
        self, request: dict[str, Any], text: str, *, usage: dict[str, int] | None = None,
        finish_reason: str | None = None, endpoint: str | None = None,
    ) -> dict[str, Any]:
        """Store the raw answer ``text`` to ``request``; returns the entry written."""
        entry = {
            "format": CACHE_FORMAT,
            "request": request,
            "text": text,
            "usage": dict(usage or {}),
            "finish_reason": finish_reason,
            "endpoint": endpoint,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        self._write(request_key(request), entry)
        return entry

    def annotate(self, request: dict[str, Any], **fields: Any) -> None:
        """Add fields (for example ``parsed=[...]``) to an existing entry; no-op when missing."""
        entry = self.get(request)
        if entry is None:
            return
        if all(entry.get(k) == v for k, v in fields.items()):
            return
        entry.update(fields)
        self._write(request_key(request), entry)

    def _write(self, key: str, entry: dict[str, Any]) -> None:
        atomic_write_text(self.path(key), json.dumps(entry, ensure_ascii=False, indent=1))

    def __len__(self) -> int:
        return sum(1 for _ in self.root.glob("??/*.json")) if self.root.is_dir() else 0
