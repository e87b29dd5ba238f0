"""LLM client for any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp server).

``OpenAIChatClient(LLMConfig(model=..., base_url=...))`` sends chat requests through the
``openai`` package. Every answer is cached on disk with its exact request (:mod:`llm_cache`), so a
run can be replayed with ``offline=True``, which never touches the network and names every
request it lacks. Rate limits (429), timeouts, connection errors and 5xx answers are retried
with exponential backoff (honouring ``Retry-After``); ``complete_many`` keeps up to
``concurrency`` requests in flight. ``usage`` counts requests, cache hits, retries and tokens.

The API key is read from the environment variable named by ``LLMConfig.api_key_env`` when the
first request goes out, and is never logged or stored.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

from zsvl.errors import InvalidParameterError, LLMError, LLMOfflineError
from zsvl.text.llm_cache import LLMCache, request_key

__all__ = ["LLMClient", "LLMConfig", "LLMUsage", "OpenAIChatClient", "Messages"]

logger = logging.getLogger(__name__)

Messages = list[dict[str, str]]  # [{"role": "system"|"user"|"assistant", "content": "..."}]
_RETRY_STATUS = (408, 409, 429)
_LOCAL_KEY = "sk-no-key-needed"  # sent to endpoints given by base_url when no key is set


@runtime_checkable
class LLMClient(Protocol):
    """What zsvl needs from an LLM: chat messages in, answer text out."""

    def complete(self, messages: Messages) -> str: ...


@dataclass(frozen=True)
class LLMConfig:
    """How to reach an OpenAI-compatible endpoint and how to sample from it."""

    model: str = "gpt-4o-mini"  # model name as the endpoint knows it
    base_url: str | None = None  # e.g. "http://localhost:8000/v1" (vLLM); None: OpenAI's API
    api_key_env: str = "OPENAI_API_KEY"  # environment variable that holds the key
    temperature: float = 0.0  # sampling temperature
    max_tokens: int = 400  # answer length limit (CBD's 100 truncated lists)
    seed: int | None = None  # sampling seed, for endpoints that support it
    timeout: float = 60.0  # seconds per HTTP request
    max_retries: int = 5  # retries after a 429, 408/409, 5xx, timeout or connection error
    backoff: float = 1.0  # first retry delay in seconds; doubles per retry, with jitter
    backoff_max: float = 30.0  # longest single wait, also caps Retry-After
    concurrency: int = 4  # requests in flight at once in complete_many

    def __post_init__(self) -> None:
        checks = {
            "concurrency": self.concurrency >= 1, "max_retries": self.max_retries >= 0,
            "max_tokens": self.max_tokens >= 1, "timeout": self.timeout > 0,
            "backoff": self.backoff >= 0, "temperature": self.temperature >= 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise InvalidParameterError(
                    f"LLMConfig.{name} is out of range. Got {getattr(self, name)!r}."
                )
        if not self.model:
            raise InvalidParameterError("LLMConfig.model must name a model. Got ''.")


@dataclass
class LLMUsage:
    """Counters for one client: what went to the endpoint, what came from the cache, tokens."""

    requests: int = 0  # answers received from the endpoint
    cache_hits: int = 0  # answers served from the on-disk cache
    retries: int = 0  # failed attempts that were retried
    prompt_tokens: int = 0
    completion_tokens: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + int(value))

    def as_dict(self) -> dict[str, int]:
        names = ("requests", "cache_hits", "retries", "prompt_tokens", "completion_tokens")
        return {name: int(getattr(self, name)) for name in names}

    def summary(self) -> str:
        return (
            f"{self.requests} LLM requests sent ({self.cache_hits} answered from the cache, "
            f"{self.retries} retries), {self.prompt_tokens:,} prompt + "
            f"{self.completion_tokens:,} completion tokens"
        )


class OpenAIChatClient:
    """Chat completions over the ``openai`` package, with a disk cache, retries and concurrency.

    Parameters
    ----------
    config : LLMConfig, or None for the defaults; keyword ``overrides`` replace its fields.
    cache : an LLMCache, None for the default one under ``$ZSVL_HOME/llm``, or False for none.
    offline : only answer from the cache; a missing request raises LLMOfflineError listing it.
    """

    def __init__(
        self, config: LLMConfig | None = None, *, cache: LLMCache | None | bool = None,
        offline: bool = False, **overrides: Any,
    ) -> None:
        self.config = replace(config or LLMConfig(), **overrides)
        if cache is False and offline:
            raise InvalidParameterError("offline=True needs the cache; do not pass cache=False.")
        if cache is False:
            self.cache = None
        else:
            self.cache = cache if isinstance(cache, LLMCache) else LLMCache()
        self.offline = bool(offline)
        self.usage = LLMUsage()
        self._client: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        c = self.config
        return (
            f"OpenAIChatClient(model={c.model!r}, base_url={c.base_url!r}, "
            f"offline={self.offline})"
        )

    def request(self, messages: Messages) -> dict[str, Any]:
        """The exact request (model, messages, sampling parameters): the cache key's content."""
        _check_messages(messages)
        c = self.config
        req: dict[str, Any] = {
            "model": c.model, "messages": [dict(m) for m in messages],
            "temperature": c.temperature, "max_tokens": c.max_tokens,
        }
        if c.seed is not None:
            req["seed"] = c.seed
        return req

    def complete(self, messages: Messages) -> str:
        """The answer text to one conversation (from the cache when it holds it)."""
        return self.complete_many([messages])[0]

    def complete_many(
        self, batch: Sequence[Messages], *, progress: Callable[[int], None] | None = None
    ) -> list[str]:
        """Answers to many conversations, in order; up to ``concurrency`` requests in flight.

        In offline mode every answer must be cached, else LLMOfflineError lists all missing ones.
        If a request still fails after its retries, the error is raised once the others finish
        (their answers are cached, so running again resumes where this run stopped).
        """
        requests = [self.request(m) for m in batch]
        answers: list[str | None] = [None] * len(requests)
        todo = []
        for i, req in enumerate(requests):
            entry = self.cache.get(req) if self.cache is not None else None
            if entry is not None:
                answers[i] = entry["text"]
                self.usage.add(cache_hits=1)
                if progress is not None:
                    progress(1)
            else:
                todo.append(i)
        if todo and self.offline:
            missing = [_describe(requests[i]) for i in todo]
            raise LLMOfflineError(
                f"Offline mode: {len(todo)} of {len(requests)} LLM requests are not in the cache "
                f"({self.cache.root if self.cache else 'no cache'}). Missing:\n  "
                + "\n  ".join(missing[:50]) + ("\n  ..." if len(missing) > 50 else "")
                + "\nRun once with the endpoint reachable (without --offline) to fill the cache.",
                missing,
            )
        errors: list[BaseException] = []

        def run(i: int) -> None:
            try:
                answers[i] = self._fetch(requests[i])
            except LLMError as exc:
                errors.append(exc)
            if progress is not None:
                progress(1)

        if len(todo) == 1:
            run(todo[0])
        elif todo:
            with ThreadPoolExecutor(max_workers=min(self.config.concurrency, len(todo))) as pool:
                list(pool.map(run, todo))
        if errors:
            raise errors[0]
        return [a if a is not None else "" for a in answers]

    def record_parsed(self, messages: Messages, parsed: Any) -> None:
        """Store the parsed form of a cached answer beside its raw text."""
        if self.cache is not None:
            self.cache.annotate(self.request(messages), parsed=parsed)

    def _fetch(self, req: dict[str, Any]) -> str:
        import openai

        client = self._openai()
        c = self.config
        for attempt in range(c.max_retries + 1):
            try:
                resp = client.chat.completions.create(**req)
                break
            except (openai.APIConnectionError, openai.APIStatusError) as exc:  # timeouts too
                status = getattr(exc, "status_code", None)
                retryable = status is None or status in _RETRY_STATUS or status >= 500
                what = f"HTTP {status}" if status is not None else type(exc).__name__
                if not retryable:
                    raise LLMError(
                        f"The LLM endpoint {c.base_url or 'api.openai.com'} refused the request "
                        f"for model {c.model!r} with {what}: {_short(exc)}"
                    ) from exc
                if attempt == c.max_retries:
                    raise LLMError(
                        f"The LLM endpoint {c.base_url or 'api.openai.com'} kept failing "
                        f"({what}) after {c.max_retries} retries: {_short(exc)}. Try again "
                        "later, raise max_retries or lower concurrency."
                    ) from exc
                delay = self._delay(attempt, exc)
                self.usage.add(retries=1)
                logger.info("LLM request failed (%s); retry %d in %.2fs.", what, attempt + 1, delay)
                time.sleep(delay)
        choice = resp.choices[0] if resp.choices else None
        text = (choice.message.content if choice is not None else None) or ""
        finish = getattr(choice, "finish_reason", None)
        usage = {
            "prompt_tokens": int(getattr(resp.usage, "prompt_tokens", 0) or 0),
            "completion_tokens": int(getattr(resp.usage, "completion_tokens", 0) or 0),
        }
        if finish == "length":
            logger.warning(
                "An LLM answer stopped at max_tokens=%d and may end mid-item; raise max_tokens.",
                c.max_tokens,
            )
        self.usage.add(requests=1, **usage)
        if self.cache is not None:
            self.cache.put(req, text, usage=usage, finish_reason=finish, endpoint=c.base_url)
        return text

    def _delay(self, attempt: int, exc: BaseException) -> float:
        c = self.config
        delay = c.backoff * (2**attempt) * (0.5 + random.random() / 2)
        response = getattr(exc, "response", None)
        header = response.headers.get("retry-after") if response is not None else None
        try:
            delay = max(delay, float(header)) if header is not None else delay
        except ValueError:
            pass
        return min(delay, c.backoff_max)

    def _openai(self) -> Any:
        with self._lock:
            if self._client is None:
                import openai

                c = self.config
                key = os.environ.get(c.api_key_env)
                if not key:
                    if c.base_url is None:
                        raise LLMError(
                            f"No API key: set the environment variable {c.api_key_env} (or name "
                            "another with api_key_env), or point base_url at a local server."
                        )
                    key = _LOCAL_KEY
                    logger.debug("%s is unset; no real key goes to %s", c.api_key_env, c.base_url)
                self._client = openai.OpenAI(
                    api_key=key, base_url=c.base_url, timeout=c.timeout, max_retries=0
                )
            return self._client


def _check_messages(messages: Messages) -> None:
    ok = isinstance(messages, list) and messages and all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
        for m in messages
    )
    if not ok:
        raise InvalidParameterError(
            "messages must be a non-empty list of {'role': ..., 'content': ...} dicts. "
            f"Got {str(messages)[:200]}."
        )


def _describe(req: dict[str, Any]) -> str:
    """One line naming a request: its cache key and the start of its last user message."""
    last = next((m["content"] for m in reversed(req["messages"]) if m["role"] == "user"), "")
    tail = " ".join(last.split())[-90:]
    return f"{request_key(req)[:12]} model={req['model']} ...{tail!r}"


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]
