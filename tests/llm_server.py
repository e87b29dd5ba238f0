"""A real OpenAI-compatible HTTP server on 127.0.0.1 that answers from the toy world's tables.

``ToyLLMServer`` serves ``POST /v1/chat/completions`` on a free port (stdlib ``http.server``,
one thread per connection) and plays an LLM that knows the toy world: it answers the CBD, CuPL
and FuDD prompts of ``prompts/llm/`` about any toy class. Tests script failures with
``server.script(...)`` (one fault per request, in order: "429", "500", "timeout", "garbage",
"empty", "badjson" (status 200, a truncated JSON body), "html" (status 200, a web page), "401"
(an error body that echoes the bearer token, as some proxies do)) or ``server.bad_classes``
(always garbage for those classes), and read ``server.stats``. 429 and 500 answers carry
``retry-after-ms: server.retry_after_ms`` so that the openai client's retries stay quick.

Run as a script to write the shipped toy descriptor files through the real path (this server
and the real ``openai`` client)::

    python tests/llm_server.py --write prompts/descriptors
"""

from __future__ import annotations

import collections
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from zsvl.toy.world import class_attributes, vocabulary

MODEL = "toy-llm"
GARBAGE = "I am sorry, but I would rather talk about something else today."
_CBD = re.compile(r"distinguishing an? (.+?) in a photo\?", re.I)
_CUPL = (
    (re.compile(r"Describe what an? (.+?) looks like\.", re.I), "describe"),
    (re.compile(r"How can you identify an? (.+?) in a photo\?", re.I), "identify"),
    (re.compile(r"captions of an image of an? (.+?), one per line", re.I), "caption"),
)
_PAIR = re.compile(r"How does an? (.+?) look different from an? (.+?) in a photo\?", re.I)


def _toy_table() -> dict[str, dict[str, str]]:
    table: dict[str, dict[str, str]] = {}
    for dataset in ("ToyShapes", "ToyFine", "ToyTextures"):
        table.update(class_attributes(dataset))
    return table


TABLE = _toy_table()


def _article(phrase: str) -> str:
    return ("an " if phrase[:1] in "aeiou" else "a ") + phrase


def _name(phrase: str) -> str:
    """The toy class inside a prompt's class phrase ("red circle (a kind of shape)" -> ...)."""
    return re.sub(r"\s*\(.*\)$", "", phrase.strip())


def _traits(attrs: dict[str, str]) -> list[str]:
    return [t for a, v in attrs.items() for t in vocabulary(a)[v].get("traits", [])]


def _adj(attribute: str, value: str) -> str:
    entry = vocabulary(attribute)[value]
    return (entry.get("adjs") or entry.get("nouns") or [value])[0]


def _feature_phrase(attribute: str, value: str) -> str:
    """How the toy LLM writes one attribute value into a caption ("with stripes")."""
    tails = vocabulary(attribute)[value].get("tails")
    return tails[0] if tails else f"that is {_adj(attribute, value)}"


def cbd_answer(name: str) -> str:
    attrs = TABLE[name]
    return "\n".join(f"- {t}" for t in _traits(attrs))


def _verb(trait: str) -> str:
    """The trait as a predicate: "has no corners", "is red in colour", "has parallel stripes"."""
    if trait.startswith(("has ", "points ")):
        return trait
    if trait.endswith("in colour") or " " not in trait:
        return f"is {trait}"
    return f"has {trait}"


def cupl_answer(name: str, kind: str) -> str:
    attrs = TABLE[name]
    traits = _traits(attrs)
    if kind == "describe":
        lines = [f"A {name} {_verb(t)}." for t in traits]
    elif kind == "identify":
        lines = [f"You can tell a {name} because it {_verb(t)}." for t in traits]
    else:
        lines = [f"a photo of {_article(name)} {_feature_phrase(a, v)}." for a, v in attrs.items()]
        lines += [f"a photo of {_article(name)}.", f"a picture of {_article(name)}."]
    return "\n".join(f"- {line}" for line in lines)


def pair_answer(a: str, b: str) -> str:
    """FuDD-style captions of each class showing how it differs, as the prompt asks."""
    first, second = TABLE[a], TABLE[b]
    items = [
        {
            "attribute": attr,
            "first": f"a photo of {_article(a)} {_feature_phrase(attr, first[attr])}.",
            "second": f"a photo of {_article(b)} {_feature_phrase(attr, second[attr])}.",
        }
        for attr in first
        if attr in second and first[attr] != second[attr]
    ]
    if not items:  # classes of different datasets, or the same attributes
        items = [
            {
                "attribute": "overall look",
                "first": f"a photo of {_article(a)}.",
                "second": f"a photo of {_article(b)}.",
            }
        ]
    return "```json\n" + json.dumps(items, indent=1) + "\n```"


def answer(messages: list[dict[str, str]]) -> tuple[str, str | None]:
    """(answer text, toy class names asked about) for a chat conversation."""
    users = [m["content"] for m in messages if m["role"] == "user"]
    question = users[0] if users else ""
    try:
        return _answer(question)
    except KeyError as exc:
        return f"I do not know what {exc.args[0]} is.", str(exc.args[0])


def _answer(question: str) -> tuple[str, str | None]:
    pair = _PAIR.search(question)
    if pair:
        a, b = _name(pair.group(1)), _name(pair.group(2))
        return pair_answer(a, b), f"{a}|{b}"
    cbd = _CBD.findall(question)
    if cbd:
        name = _name(cbd[-1])
        return cbd_answer(name), name
    for pattern, kind in _CUPL:
        m = pattern.search(question)
        if m:
            name = _name(m.group(1))
            return cupl_answer(name, kind), name
    return GARBAGE, None


class ToyLLMServer:
    """The server; use as a context manager or call ``start()``/``stop()``."""

    def __init__(self, *, delay: float = 0.0) -> None:
        self.delay = delay  # seconds each answer takes (to observe concurrency)
        self.bad_classes: set[str] = set()  # classes always answered with GARBAGE
        self.timeout_sleep = 2.0  # how long a scripted "timeout" request hangs
        self.extra_items: dict[str, list[str]] = {}  # class -> items added to its CBD answer
        self.retry_after_ms = 10  # retry-after-ms header of 429/500 answers (None: no header)
        self._script: collections.deque[str] = collections.deque()
        self._lock = threading.Lock()
        self.stats: dict[str, Any] = {}
        self.log: list[dict[str, Any]] = []
        self.reset_stats()
        self._httpd: ThreadingHTTPServer | None = None
        self._url: str | None = None
        self._thread: threading.Thread | None = None

    def reset_stats(self) -> None:
        with self._lock:
            self.stats = {
                "requests": 0,
                "answered": 0,
                "in_flight": 0,
                "max_in_flight": 0,
                "status": collections.Counter(),
            }
            self.log = []

    def script(self, *faults: str) -> None:
        """Faults for the next requests, one each (see the module docstring)."""
        with self._lock:
            self._script.extend(faults)

    @property
    def base_url(self) -> str:
        """The endpoint's URL (kept after ``stop``, so clients can try a dead server)."""
        assert self._url is not None, "server not started"
        return self._url

    def start(self) -> ToyLLMServer:
        handler = type("Handler", (_Handler,), {"owner": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> ToyLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _next_fault(self) -> str | None:
        with self._lock:
            return self._script.popleft() if self._script else None

    def _enter(self) -> None:
        with self._lock:
            self.stats["requests"] += 1
            self.stats["in_flight"] += 1
            self.stats["max_in_flight"] = max(self.stats["max_in_flight"], self.stats["in_flight"])

    def _leave(self, status: int) -> None:
        with self._lock:
            self.stats["in_flight"] -= 1
            self.stats["status"][status] += 1
            self.stats["answered"] += int(status == 200)


class _Handler(BaseHTTPRequestHandler):
    owner: ToyLLMServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass

    def _send(
        self,
        status: int,
        body: dict[str, Any] | bytes,
        headers: dict[str, str] | None = None,
        ctype: str = "application/json",
    ):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802 (http.server API)
        server = self.owner
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length) or b"{}")
        server._enter()
        status = 200
        try:
            if self.path.rstrip("/") != "/v1/chat/completions":
                status = 404
                return self._send(404, {"error": {"message": f"no route {self.path}"}})
            fault = server._next_fault()
            if server.delay:
                time.sleep(server.delay)
            wait = (
                {"retry-after-ms": str(server.retry_after_ms)}
                if server.retry_after_ms is not None
                else {}
            )
            if fault == "429":
                status = 429
                return self._send(429, {"error": {"message": "rate limited", "type": "rate"}}, wait)
            if fault == "500":
                status = 500
                return self._send(500, {"error": {"message": "internal error"}}, wait)
            if fault == "401":
                status = 401
                token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                return self._send(
                    401,
                    {
                        "error": {
                            "message": f"Incorrect API key provided: {token}. Header was "
                            f"'Authorization: Bearer {token}'.",
                            "type": "auth",
                        }
                    },
                )
            if fault == "badjson":
                return self._send(200, b'{"id": "chatcmpl-1", "choices": [{"index": 0, "mess')
            if fault == "html":
                page = b"<!DOCTYPE html><html><body><h1>Welcome to nginx!</h1></body></html>"
                return self._send(200, page, ctype="text/html; charset=utf-8")
            if fault == "timeout":
                time.sleep(server.timeout_sleep)
            text, asked = answer(body.get("messages", []))
            if asked in server.extra_items:
                text += "".join(f"\n- {item}" for item in server.extra_items[asked])
            if fault == "garbage" or (asked in server.bad_classes):
                text = GARBAGE
            elif fault == "empty":
                text = ""
            with server._lock:
                server.log.append(
                    {
                        "asked": asked,
                        "messages": body.get("messages"),
                        "model": body.get("model"),
                        "fault": fault,
                    }
                )
            words = sum(len(m.get("content", "").split()) for m in body.get("messages", []))
            self._send(
                200,
                {
                    "id": f"chatcmpl-{server.stats['requests']}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model", MODEL),
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "stop",
                            "message": {"role": "assistant", "content": text},
                        }
                    ],
                    "usage": {
                        "prompt_tokens": words,
                        "completion_tokens": len(text.split()),
                        "total_tokens": words + len(text.split()),
                    },
                },
            )
        except (BrokenPipeError, ConnectionResetError):
            status = 499  # the client gave up (a timeout test)
        finally:
            server._leave(status)


def write_toy_descriptor_files(out_dir: str) -> list[str]:
    """Generate the shipped toy descriptor files through this server and the real client."""
    import tempfile
    from pathlib import Path

    from zsvl.text.generate import generate_descriptor_file
    from zsvl.text.llm import LLMConfig
    from zsvl.toy.suite import TOY_DATASETS

    written = []
    with ToyLLMServer() as server, tempfile.TemporaryDirectory() as cache:
        config = LLMConfig(model=MODEL, base_url=server.base_url, concurrency=8)
        for spec in TOY_DATASETS:
            for style in ("cbd", "cupl", "fudd"):
                out = Path(out_dir) / f"{spec.folder}_{style}.json"
                _, summary = generate_descriptor_file(
                    spec.classnames, out, style=style, config=config, cache_dir=cache
                )
                written.append(f"{out}: {summary}")
    return written


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", required=True, help="folder for the toy descriptor files")
    for line in write_toy_descriptor_files(parser.parse_args().write):
        print(line)
