"""On-disk cache of LLM requests and responses, so that any run can be replayed offline.

One JSON file per request under ``<root>/<key[:2]>/<key>.json``. The key is the SHA-256 of the
canonical JSON of the endpoint (URL without credentials) and the exact request (model, messages
and every sampling parameter), so two servers that serve a model of the same name never share
answers. The entry stores the endpoint, the request, the raw answer text, the token usage,
whether the caller accepted the answer, and the parsed result of an accepted one. Writes are
atomic (temporary file, fsync, rename). An entry that does not parse or whose content does not
hash to its key is reported and treated as missing. Nothing secret is stored: the request body
holds no key and the endpoint is stripped of credentials by the client.
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

CACHE_FORMAT = 2  # bump when the key or the entry layout changes (2: the endpoint joined the key)


def default_cache_dir() -> Path:
    """``$ZSVL_HOME/llm``."""
    from zsvl.paths import zsvl_home

    return zsvl_home() / "llm"


def request_key(request: dict[str, Any], endpoint: str) -> str:
    """SHA-256 hex digest of the canonical JSON of ``endpoint`` and ``request``."""
    blob = json.dumps(
        {"endpoint": endpoint, "request": request},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(f"zsvl-llm-{CACHE_FORMAT}:{blob}".encode()).hexdigest()


class LLMCache:
    """Request/response store. ``get`` returns the entry dict or None; ``put`` writes one."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, request: dict[str, Any], endpoint: str) -> dict[str, Any] | None:
        """The cached entry (keys: endpoint, request, text, accepted, parsed, ...), or None."""
        key = request_key(request, endpoint)
        path = self.path(key)
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            logger.warning("Ignoring a corrupted LLM cache entry %s (%s); asking again.", path, exc)
            return None
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("endpoint"), str)
            or request_key(entry.get("request", {}), entry["endpoint"]) != key
        ):
            logger.warning("Ignoring LLM cache entry %s: its request does not match its key.", path)
            return None
        if not isinstance(entry.get("text"), str):
            logger.warning("Ignoring LLM cache entry %s: it holds no answer text.", path)
            return None
        return entry

    def put(
        self,
        request: dict[str, Any],
        text: str,
        *,
        endpoint: str,
        accepted: bool = True,
        parsed: Any = None,
        usage: dict[str, int] | None = None,
        finish_reason: str | None = None,
    ) -> dict[str, Any]:
        """Store the raw answer ``text`` to ``request`` sent to ``endpoint``; returns the entry.

        ``accepted=False`` marks an answer the caller rejected: clients serve it only offline.
        """
        entry: dict[str, Any] = {
            "format": CACHE_FORMAT,
            "endpoint": endpoint,
            "request": request,
            "text": text,
            "accepted": bool(accepted),
            "usage": dict(usage or {}),
            "finish_reason": finish_reason,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        if parsed is not None:
            entry["parsed"] = _jsonable(parsed)
        atomic_write_text(
            self.path(request_key(request, endpoint)),
            json.dumps(entry, ensure_ascii=False, indent=1),
        )
        return entry

    def __len__(self) -> int:
        return sum(1 for _ in self.root.glob("??/*.json")) if self.root.is_dir() else 0


def _jsonable(value: Any) -> Any:
    """Tuples as lists, recursively (parsed FuDD answers are tuples)."""
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
