"""Faults of a real endpoint (tests/llm_server.py, real sockets, the real openai client).

Each test first reproduces what a broken or hostile server does (a truncated JSON body, a web
page with status 200, a 401 that echoes the key, a hung request, answers that cannot be used, a
second server with the same model name), then checks zsvl's answer: a clear LLMError, nothing
cached that is not a usable answer, the key never shown, the cache keyed by the endpoint.
"""

from __future__ import annotations

import json
import logging
import time

import pytest
from llm_server import MODEL, ToyLLMServer

from zsvl.errors import LLMError
from zsvl.text.generate import generate_descriptors
from zsvl.text.llm import LLMConfig, OpenAIChatClient, endpoint_of, redact
from zsvl.text.llm_cache import LLMCache
from zsvl.toy.world import class_traits

CLASSES = ["red solid circle", "blue dotted hexagon"]
ASK = [
    {
        "role": "user",
        "content": "What are useful visual features for distinguishing a red "
        "solid circle in a photo?",
    }
]


def _traits(name: str) -> tuple[str, ...]:
    return tuple(class_traits("ToyFine", name))


def test_truncated_json_body_is_a_clear_error_and_not_cached(make_client, llm_server):
    llm_server.script("badjson")
    client = make_client()
    with pytest.raises(LLMError, match="not valid JSON .*application/json") as info:
        client.complete(ASK)
    assert info.value.__cause__ is None and "Nothing was cached" in str(info.value)
    assert len(client.cache) == 0
    # the server recovered: the rerun sends the request again and gets the answer
    assert make_client().complete(ASK).startswith("- round")
    assert llm_server.stats["requests"] == 2


def test_html_page_with_status_200_is_a_clear_error(make_client, llm_server):
    llm_server.script("html", "html")
    with pytest.raises(
        LLMError,
        match=r"not a chat completion \(text/html.*Welcome to nginx.*"
        r"base_url",
    ):
        make_client().complete(ASK)
    with pytest.raises(LLMError, match="not a chat completion"):
        generate_descriptors(CLASSES[:1], make_client())
    result = generate_descriptors(CLASSES[:1], make_client())
    assert result.descriptors == (_traits(CLASSES[0]),)
    assert llm_server.stats["requests"] == 3


def test_rejected_answers_are_not_served_again_after_the_server_recovers(make_client, llm_server):
    llm_server.bad_classes = {CLASSES[1]}
    first = generate_descriptors(CLASSES, make_client(), on_failure="empty")
    assert first.empty_classes == [CLASSES[1]]
    assert llm_server.stats["requests"] == 3  # 2 questions + 1 re-ask of the bad class
    entries = [json.loads(p.read_text()) for p in make_client().cache.root.glob("??/*.json")]
    assert sorted(e["accepted"] for e in entries) == [False, False, True]
    llm_server.bad_classes = set()
    llm_server.reset_stats()
    again = make_client()
    second = generate_descriptors(CLASSES, again)
    assert second.descriptors == tuple(_traits(n) for n in CLASSES)
    assert llm_server.stats["requests"] == 1 and again.usage.cache_hits == 1


def test_offline_replay_follows_a_recorded_re_ask(make_client, llm_server):
    llm_server.script("garbage")
    online = generate_descriptors(CLASSES, make_client(concurrency=1))
    assert llm_server.stats["requests"] == 3
    llm_server.stop()
    replay = make_client(offline=True)
    assert generate_descriptors(CLASSES, replay).descriptors == online.descriptors
    assert replay.usage.cache_hits == 3 and replay.usage.requests == 0


def test_cache_is_keyed_by_the_endpoint(make_client, llm_server, tmp_path):
    cache = LLMCache(tmp_path / "shared")
    first = OpenAIChatClient(LLMConfig(model=MODEL, base_url=llm_server.base_url), cache=cache)
    assert generate_descriptors(CLASSES[:1], first).descriptors == (_traits(CLASSES[0]),)
    with ToyLLMServer() as other:  # another server, same model name, different answers
        other.extra_items = {CLASSES[0]: ["served by the second endpoint"]}
        second = OpenAIChatClient(LLMConfig(model=MODEL, base_url=other.base_url), cache=cache)
        result = generate_descriptors(CLASSES[:1], second)
        assert other.stats["requests"] == 1 and second.usage.cache_hits == 0
    assert result[CLASSES[0]][-1] == "served by the second endpoint"
    assert {json.loads(p.read_text())["endpoint"] for p in cache.root.glob("??/*.json")} == {
        llm_server.base_url,
        other.base_url,
    }


def test_a_401_body_that_echoes_the_key_is_redacted(make_client, llm_server, monkeypatch, caplog):
    secret = "sk-live-0123456789abcdefSECRET"
    monkeypatch.setenv("ZSVL_TEST_KEY", secret)
    llm_server.script("401")
    client = make_client(api_key_env="ZSVL_TEST_KEY")
    with caplog.at_level(logging.DEBUG), pytest.raises(LLMError, match="HTTP 401") as info:
        client.complete(ASK)
    text = str(info.value)
    assert "Incorrect API key provided: ***" in text and "Check the API key" in text
    assert secret not in text and secret[3:12] not in text and info.value.__cause__ is None
    assert secret not in caplog.text and len(client.cache) == 0


def test_redact_and_endpoint_strip_secrets():
    assert redact("Authorization: Bearer abc.def-123 ok") == "Authorization: Bearer *** ok"
    assert redact("key sk-proj-AbC123_xyz was wrong") == "key *** was wrong"
    assert redact('{"api_key": "hunter2hunter2"}') == '{"api_key": "***"}'
    assert redact("my token is s3cr3tvalue", ["s3cr3tvalue"]) == "my token is ***"
    assert endpoint_of("http://user:pw@127.0.0.1:8000/v1/") == "http://127.0.0.1:8000/v1"


def test_timeout_is_configurable_and_bounds_each_attempt(make_client, llm_server):
    llm_server.timeout_sleep = 1.5
    llm_server.script("timeout", "timeout")
    client = make_client(timeout=0.3, max_retries=1)
    start = time.perf_counter()
    with pytest.raises(
        LLMError,
        match=r"kept failing \(APITimeoutError\) after 1 retries "
        r"\(timeout 0.3 s",
    ):
        client.complete(ASK)
    assert time.perf_counter() - start < 1.4  # two 0.3 s attempts and one short backoff
    assert client.usage.retries == 1 and len(client.cache) == 0
    assert OpenAIChatClient(LLMConfig(model=MODEL), cache=False, timeout=7.5).config.timeout == 7.5


def test_descriptions_that_name_another_class_are_reported_or_dropped(make_client, llm_server):
    llm_server.extra_items = {
        CLASSES[0]: ["not a blue dotted hexagon", "smaller than a red solid circle usually is"]
    }
    kept = generate_descriptors(CLASSES, make_client())
    assert kept[CLASSES[0]][-2:] == (
        "not a blue dotted hexagon",
        "smaller than a red solid circle usually is",
    )
    assert kept.provenance["mentions"] == [
        {"class": CLASSES[0], "text": "not a blue dotted hexagon", "names": CLASSES[1]}
    ]
    dropped = generate_descriptors(CLASSES, make_client(), on_mention="drop")
    assert "not a blue dotted hexagon" not in dropped[CLASSES[0]]
    assert dropped[CLASSES[1]] == _traits(CLASSES[1]) and len(dropped.provenance["mentions"]) == 1
