"""LLM client for any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp server).

``OpenAIChatClient(LLMConfig(model=..., base_url=...))`` sends chat requests through the
``openai`` package. Retries are the openai client's own (``max_retries``: 408, 409, 429, 5xx,
timeouts and connection errors, exponential backoff with jitter, ``Retry-After`` honoured);
``timeout`` bounds each HTTP attempt. ``complete_many`` keeps up to ``concurrency`` requests in
flight. ``usage`` counts requests, cache hits, retries and tokens.

Every answer received is written to the disk cache (:mod:`llm_cache`) under a key made of the
endpoint, the model and the exact request, so a run can be replayed with ``offline=True``, which
never touches the network and names every request it lacks. A caller may pass ``validate``: an
answer it rejects (unparsable, empty) is stored marked as rejected and never served from the
cache again while the endpoint is reachable, so a rerun asks anew; an offline replay still sees
it and takes the same path as the run it replays. Errors (HTTP failures, bodies that are not a
chat completion) are never cached.

The API key is read from the environment variable named by ``LLMConfig.api_key_env`` when the
first request goes out; it, bearer tokens and ``sk-...`` strings are removed from every message
and log line this module writes (:func:`redact`), and the key is never stored.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

from zsvl.errors import InvalidParameterError, LLMError, LLMOfflineError
from zsvl.text.llm_cache import LLMCache, request_key

__all__ = [
    "LLMClient",
    "LLMConfig",
    "LLMUsage",
    "OpenAIChatClient",
    "Messages",
    "endpoint_of",
    "redact",
]

logger = logging.getLogger(__name__)

Messages = list[dict[str, str]]  # [{"role": "system"|"user"|"assistant", "content": "..."}]
Validate = Callable[[int, str], Any]  # (position in the batch, answer) -> parsed; falsy: rejected
_RETRIED_STATUS = (408, 409, 429)  # and >= 500: what the openai client retries
_LOCAL_KEY = "sk-no-key-needed"  # sent to endpoints given by base_url when no key is set
_OPENAI_URL = "https://api.openai.com/v1"
_SECRET_PATTERNS = (
    re.compile(
        r"(?i)((?:api[_-]?key|token|authorization)[\"']?\s*[:=]\s*[\"']?(?:bearer\s+)?)"
        r"[^\s\"',;&]+"
    ),
    re.compile(r"(?i)(bearer\s+)[^\s\"',;]+"),
    re.compile(r"\bsk-[A-Za-z0-9_*.-]{4,}"),
)


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
    timeout: float = 60.0  # seconds per HTTP attempt (connect, send, wait for the answer)
    max_retries: int = 5  # openai client retries after 408/409/429/5xx, timeouts, lost connections
    concurrency: int = 4  # requests in flight at once in complete_many

    def __post_init__(self) -> None:
        checks = {
            "concurrency": self.concurrency >= 1,
            "max_retries": self.max_retries >= 0,
            "max_tokens": self.max_tokens >= 1,
            "timeout": self.timeout > 0,
            "temperature": self.temperature >= 0,
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
    retries: int = 0  # failed attempts that the openai client retried
    rejected: int = 0  # answers the caller's validation refused (not served from the cache)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + int(value))

    def as_dict(self) -> dict[str, int]:
        names = (
            "requests",
            "cache_hits",
            "retries",
            "rejected",
            "prompt_tokens",
            "completion_tokens",
        )
        return {name: int(getattr(self, name)) for name in names}

    def summary(self) -> str:
        return (
            f"{self.requests} LLM requests sent ({self.cache_hits} answered from the cache, "
            f"{self.retries} retries, {self.rejected} answers rejected), "
            f"{self.prompt_tokens:,} prompt + {self.completion_tokens:,} completion tokens"
        )


def endpoint_of(base_url: str | None) -> str:
    """The endpoint a client talks to, as it enters cache keys: no credentials, no trailing '/'.

    None means what the openai package uses: ``$OPENAI_BASE_URL`` or OpenAI's API.
    """
    url = (base_url or os.environ.get("OPENAI_BASE_URL") or _OPENAI_URL).strip().rstrip("/")
    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = host + (f":{parts.port}" if parts.port else "")
        url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return url


def redact(text: str, secrets: Sequence[str | None] = ()) -> str:
    """``text`` with the given secrets, bearer tokens, ``sk-...`` keys and ``key=...`` values
    replaced by ``***``."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "***", text)
    return text


class OpenAIChatClient:
    """Chat completions over the ``openai`` package, with a disk cache, retries and concurrency.

    Parameters
    ----------
    config : LLMConfig, or None for the defaults; keyword ``overrides`` replace its fields
        (for example ``timeout=10.0``, ``max_retries=2``).
    cache : an LLMCache, None for the default one under ``$ZSVL_HOME/llm``, or False for none.
    offline : only answer from the cache; a missing request raises LLMOfflineError listing it.
    """

    def __init__(
        self,
        config: LLMConfig | None = None,
        *,
        cache: LLMCache | None | bool = None,
        offline: bool = False,
        **overrides: Any,
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
        self._key: str | None = None
        self._lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        """The endpoint URL without credentials (part of every cache key)."""
        return endpoint_of(self.config.base_url)

    def __repr__(self) -> str:
        c = self.config
        return (
            f"OpenAIChatClient(model={c.model!r}, endpoint={self.endpoint!r}, "
            f"offline={self.offline})"
        )

    def request(self, messages: Messages) -> dict[str, Any]:
        """The exact request body (model, messages, sampling parameters)."""
        _check_messages(messages)
        c = self.config
        req: dict[str, Any] = {
            "model": c.model,
            "messages": [dict(m) for m in messages],
            "temperature": c.temperature,
            "max_tokens": c.max_tokens,
        }
        if c.seed is not None:
            req["seed"] = c.seed
        return req

    def complete(self, messages: Messages) -> str:
        """The answer text to one conversation (from the cache when it holds it)."""
        return self.complete_many([messages])[0]

    def complete_many(
        self,
        batch: Sequence[Messages],
        *,
        progress: Callable[[int], None] | None = None,
        validate: Validate | None = None,
    ) -> list[str]:
        """Answers to many conversations, in order; up to ``concurrency`` requests in flight.

        ``validate(i, text)`` returns the parsed answer (stored beside it) or something falsy to
        reject it; without it, an empty answer is rejected. A rejected answer is returned (the
        caller may re-ask) but never served from the cache again unless offline.
        In offline mode every answer must be cached, else LLMOfflineError lists all missing ones.
        If a request fails, the error is raised once the others finish (their answers are
        cached, so running again resumes where this run stopped).
        """
        check = validate or (lambda _i, text: text.strip())
        requests = [self.request(m) for m in batch]
        answers: list[str | None] = [None] * len(requests)
        todo = []
        for i, req in enumerate(requests):
            entry = self.cache.get(req, self.endpoint) if self.cache is not None else None
            usable = entry is not None and (
                self.offline or (entry.get("accepted", True) and check(i, entry["text"]))
            )
            if usable and entry is not None:
                answers[i] = entry["text"]
                self.usage.add(cache_hits=1)
                if progress is not None:
                    progress(1)
            else:
                todo.append(i)
        if todo and self.offline:
            missing = [_describe(requests[i], self.endpoint) for i in todo]
            raise LLMOfflineError(
                f"Offline mode: {len(todo)} of {len(requests)} LLM requests are not in the cache "
                f"({self.cache.root if self.cache else 'no cache'}). Missing:\n  "
                + "\n  ".join(missing[:50])
                + ("\n  ..." if len(missing) > 50 else "")
                + "\nRun once with the endpoint reachable (without --offline) to fill the cache.",
                missing,
            )
        errors: list[BaseException] = []

        def run(i: int) -> None:
            try:
                text, meta = self._fetch(requests[i])
                parsed = check(i, text)
                if not parsed:
                    self.usage.add(rejected=1)
                if self.cache is not None:
                    self.cache.put(
                        requests[i],
                        text,
                        endpoint=self.endpoint,
                        accepted=bool(parsed),
                        parsed=parsed if validate is not None and parsed else None,
                        **meta,
                    )
                answers[i] = text
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

    def _fetch(self, req: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """One chat completion through the openai client (which retries); (text, cache meta)."""
        import openai

        client = self._openai()
        try:
            raw = client.chat.completions.with_raw_response.create(**req)
        except openai.APIStatusError as exc:
            status = exc.status_code
            retried = status in _RETRIED_STATUS or status >= 500
            self.usage.add(retries=self.config.max_retries if retried else 0)
            if retried:
                raise self._gave_up(f"HTTP {status}", exc) from None
            raise LLMError(
                self._redact(
                    f"The LLM endpoint {self.endpoint} refused the request for model "
                    f"{self.config.model!r} with HTTP {status}: {_short(_body_text(exc))}"
                    + _hint(status)
                )
            ) from None
        except openai.APIConnectionError as exc:  # timeouts too
            self.usage.add(retries=self.config.max_retries)
            raise self._gave_up(type(exc).__name__, exc) from None
        self.usage.add(retries=int(getattr(raw, "retries_taken", 0) or 0))
        text, finish, usage = self._answer(raw)
        if finish == "length":
            logger.warning(
                "An LLM answer stopped at max_tokens=%d and may end mid-item; raise max_tokens.",
                self.config.max_tokens,
            )
        self.usage.add(requests=1, **usage)
        return text, {"usage": usage, "finish_reason": finish}

    def _answer(self, raw: Any) -> tuple[str, str | None, dict[str, int]]:
        """(text, finish_reason, token usage) of a raw HTTP answer, or a clear LLMError."""
        http = raw.http_response
        ctype = http.headers.get("content-type", "no content-type")
        begins = _short(http.text, 120)
        where = f"The LLM endpoint {self.endpoint} answered HTTP {http.status_code}"
        try:
            resp = raw.parse()
        except ValueError:  # json.JSONDecodeError and pydantic errors alike
            raise LLMError(
                self._redact(
                    f"{where} with a body that is not valid JSON ({ctype}, {len(http.content)} "
                    f"bytes, begins {begins!r}); the server or a proxy in between sent a broken "
                    "answer. Nothing was cached; run again, or check the server's logs."
                )
            ) from None
        choices = None if isinstance(resp, str) else getattr(resp, "choices", None)
        first = choices[0] if isinstance(choices, list) and choices else None
        message = getattr(first, "message", None)
        content = getattr(message, "content", None)
        if message is None or (content is not None and not isinstance(content, str)):
            raise LLMError(
                self._redact(
                    f"{where} with something that is not a chat completion ({ctype}, begins "
                    f"{begins!r}). Check base_url: it must be the API root of an OpenAI-compatible "
                    "server, usually ending in /v1. Nothing was cached."
                )
            )
        usage_obj = getattr(resp, "usage", None)
        usage = {
            "prompt_tokens": int(getattr(usage_obj, "prompt_tokens", 0) or 0),
            "completion_tokens": int(getattr(usage_obj, "completion_tokens", 0) or 0),
        }
        return content or "", getattr(first, "finish_reason", None), usage

    def _gave_up(self, what: str, exc: BaseException) -> LLMError:
        return LLMError(
            self._redact(
                f"The LLM endpoint {self.endpoint} kept failing ({what}) after "
                f"{self.config.max_retries} retries (timeout {self.config.timeout:g} s per attempt): "
                f"{_short(_body_text(exc))}. Try again later, raise --max-retries/--timeout or lower "
                "--concurrency."
            )
        )

    def _redact(self, text: str) -> str:
        return redact(text, [self._key, os.environ.get(self.config.api_key_env)])

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
                    logger.debug(
                        "%s is unset; no real key goes to %s", c.api_key_env, self.endpoint
                    )
                self._key = key
                self._client = openai.OpenAI(
                    api_key=key, base_url=c.base_url, timeout=c.timeout, max_retries=c.max_retries
                )
            return self._client


def _check_messages(messages: Messages) -> None:
    ok = (
        isinstance(messages, list)
        and messages
        and all(
            isinstance(m, dict)
            and isinstance(m.get("role"), str)
            and isinstance(m.get("content"), str)
            for m in messages
        )
    )
    if not ok:
        raise InvalidParameterError(
            "messages must be a non-empty list of {'role': ..., 'content': ...} dicts. "
            f"Got {str(messages)[:200]}."
        )


def _describe(req: dict[str, Any], endpoint: str) -> str:
    """One line naming a request: its cache key and the start of its last user message."""
    last = next((m["content"] for m in reversed(req["messages"]) if m["role"] == "user"), "")
    tail = " ".join(last.split())[-90:]
    return f"{request_key(req, endpoint)[:12]} model={req['model']} ...{tail!r}"


def _body_text(exc: BaseException) -> str:
    """What the server said: the error body's message when there is one, else the exception."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, dict) else inner
        if message:
            return str(message)
    return str(exc)


def _hint(status: int) -> str:
    if status in (401, 403):
        return " Check the API key (the variable named by --api-key-env) and its permissions."
    if status == 404:
        return " Check base_url (the API root, usually ending in /v1) and the model name."
    return ""


def _short(text: str, limit: int = 300) -> str:
    return " ".join(str(text).split())[:limit]
