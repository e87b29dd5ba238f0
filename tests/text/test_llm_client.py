"""The OpenAI-compatible client against a real HTTP server: cache, replay, retries, concurrency."""

from __future__ import annotations

import json
import logging
import time

import pytest
from llm_server import cbd_answer

from zsvl.errors import InvalidParameterError, LLMError, LLMOfflineError, LLMOutputError
from zsvl.text.generate import generate_descriptors
from zsvl.text.llm import LLMConfig, OpenAIChatClient
from zsvl.text.parsing import parse_list
from zsvl.toy.world import class_traits

CLASSES = ["red solid circle", "blue dotted hexagon", "purple striped square"]


def _traits(name: str) -> tuple[str, ...]:
    return tuple(class_traits("ToyFine", name))


def test_generation_caches_every_request_and_replays(make_client, llm_server):
    client = make_client()
    first = generate_descriptors(CLASSES, client, style="cbd")
    assert first.descriptors == tuple(_traits(n) for n in CLASSES)
    assert client.usage.requests == 3 and client.usage.cache_hits == 0
    assert client.usage.prompt_tokens > 0 and client.usage.completion_tokens > 0
    assert first.provenance["model"] == "toy-llm"
    assert first.provenance["prompts"][0]["name"] == "cbd"

    again = make_client()
    second = generate_descriptors(CLASSES, again, style="cbd")
    assert second.descriptors == first.descriptors
    assert again.usage.requests == 0 and again.usage.cache_hits == 3
    assert llm_server.stats["requests"] == 3  # nothing new reached the server


def test_cache_entry_holds_request_raw_text_and_parsed(make_client):
    client = make_client()
    generate_descriptors(CLASSES[:1], client)
    entries = list(client.cache.root.glob("??/*.json"))
    assert len(entries) == 1
    entry = json.loads(entries[0].read_text())
    assert entry["request"]["model"] == "toy-llm"
    assert "red solid circle" in entry["request"]["messages"][-1]["content"]
    assert entry["text"] == cbd_answer("red solid circle")
    assert entry["parsed"] == list(_traits("red solid circle"))
    assert entry["usage"]["completion_tokens"] > 0


def test_replay_with_server_stopped_and_missing_requests_listed(make_client, llm_server):
    expected = generate_descriptors(CLASSES, make_client()).descriptors
    llm_server.stop()
    offline = make_client(offline=True)
    assert generate_descriptors(CLASSES, offline).descriptors == expected
    assert offline.usage.cache_hits == 3 and offline.usage.requests == 0
    # a client that is not offline also replays without touching the (dead) network
    assert generate_descriptors(CLASSES, make_client()).descriptors == expected

    new = ["orange dotted triangle", "blue solid square"]
    with pytest.raises(LLMOfflineError, match="2 of 3 LLM requests are not in the cache") as info:
        generate_descriptors([CLASSES[0], *new], make_client(offline=True))
    assert len(info.value.missing) == 2
    assert all(name in line for name, line in zip(new, info.value.missing, strict=True))


def test_retries_after_429_and_500(make_client, llm_server):
    llm_server.script("429", "500")
    client = make_client()
    assert client.complete(
        [{"role": "user", "content": "How can you identify a red solid circle in a photo?"}]
    ).startswith("- You can tell a red solid circle")
    assert client.usage.retries == 2 and client.usage.requests == 1
    assert llm_server.stats["status"] == {429: 1, 500: 1, 200: 1}


def test_retries_after_a_timeout(make_client, llm_server):
    llm_server.timeout_sleep = 1.5
    llm_server.script("timeout")
    client = make_client(timeout=0.4)
    start = time.perf_counter()
    answer = client.complete(
        [
            {
                "role": "user",
                "content": "What are useful visual features for "
                "distinguishing a red solid circle in a photo?",
            }
        ]
    )
    assert parse_list(answer) == list(_traits("red solid circle"))
    assert client.usage.retries == 1
    assert time.perf_counter() - start < 1.4  # did not wait for the hung request


def test_gives_up_after_max_retries_and_on_client_errors(make_client, llm_server):
    llm_server.script("500", "500", "500")
    client = make_client(max_retries=2)
    with pytest.raises(LLMError, match=r"kept failing \(HTTP 500\) after 2 retries"):
        client.complete([{"role": "user", "content": "hello"}])
    assert llm_server.stats["status"][500] == 3
    wrong = make_client(base_url=llm_server.base_url + "/nowhere")
    with pytest.raises(LLMError, match="refused the request .* HTTP 404"):
        wrong.complete([{"role": "user", "content": "hello"}])
    assert wrong.usage.retries == 0


def test_malformed_answers_are_asked_again_once(make_client, llm_server):
    llm_server.script("garbage", "empty")
    result = generate_descriptors(CLASSES[:2], make_client(concurrency=1))
    assert result.descriptors == tuple(_traits(n) for n in CLASSES[:2])
    reasks = [entry for entry in llm_server.log if len(entry["messages"]) == 3]
    assert len(reasks) == 2
    assert [m["role"] for m in reasks[0]["messages"]] == ["user", "assistant", "user"]
    assert reasks[0]["messages"][2]["content"].startswith("Your answer could not be read")


def test_failure_policy_raise_or_record(make_client, llm_server, caplog):
    llm_server.bad_classes = {"blue dotted hexagon"}
    with pytest.raises(LLMOutputError, match="blue dotted hexagon"):
        generate_descriptors(CLASSES, make_client())
    with caplog.at_level(logging.WARNING):
        result = generate_descriptors(CLASSES, make_client(), on_failure="empty")
    assert result["blue dotted hexagon"] == ()
    assert result.empty_classes == ["blue dotted hexagon"]
    assert result.provenance["failures"] == ["blue dotted hexagon (cbd)"]
    assert "Recorded as empty" in caplog.text
    with pytest.raises(InvalidParameterError, match="on_failure"):
        generate_descriptors(CLASSES, make_client(), on_failure="ignore")


def test_bounded_concurrency(make_client, llm_server):
    llm_server.delay = 0.25
    names = [
        f"{c} {p} circle" for c in ("red", "blue", "orange", "purple") for p in ("solid", "dotted")
    ]
    batch = [[{"role": "user", "content": f"Describe what a {n} looks like."}] for n in names]
    make_client(concurrency=4).complete_many(batch)
    assert 2 <= llm_server.stats["max_in_flight"] <= 4
    llm_server.reset_stats()
    batch = [[{"role": "user", "content": f"Describe what a {n} looks like?"}] for n in names[:3]]
    make_client(concurrency=1).complete_many(batch)
    assert llm_server.stats["max_in_flight"] == 1


def test_api_key_is_never_logged_or_cached(make_client, monkeypatch, caplog):
    secret = "sk-test-SECRET-1234567890"
    monkeypatch.setenv("ZSVL_TEST_KEY", secret)
    client = make_client(api_key_env="ZSVL_TEST_KEY")
    with caplog.at_level(logging.DEBUG):
        generate_descriptors(CLASSES[:1], client)
    assert secret not in caplog.text and secret not in repr(client)
    assert all(secret not in p.read_text() for p in client.cache.root.glob("??/*.json"))


def test_missing_key_for_the_openai_endpoint_is_a_clear_error(monkeypatch, tmp_path):
    from zsvl.text.llm_cache import LLMCache

    monkeypatch.delenv("ZSVL_NO_SUCH_KEY", raising=False)
    client = OpenAIChatClient(LLMConfig(api_key_env="ZSVL_NO_SUCH_KEY"), cache=LLMCache(tmp_path))
    with pytest.raises(LLMError, match="set the environment variable ZSVL_NO_SUCH_KEY"):
        client.complete([{"role": "user", "content": "hi"}])


def test_corrupted_cache_entry_is_asked_again(make_client, llm_server, caplog):
    client = make_client()
    generate_descriptors(CLASSES[:1], client)
    (entry,) = client.cache.root.glob("??/*.json")
    entry.write_text(entry.read_text()[:40])
    with caplog.at_level(logging.WARNING):
        result = generate_descriptors(CLASSES[:1], make_client())
    assert "corrupted LLM cache entry" in caplog.text
    assert result.descriptors == (_traits(CLASSES[0]),)
    assert llm_server.stats["requests"] == 2


def test_config_and_messages_are_validated(make_client):
    with pytest.raises(InvalidParameterError, match="concurrency"):
        LLMConfig(concurrency=0)
    with pytest.raises(InvalidParameterError, match="non-empty list"):
        make_client().complete([{"content": "no role"}])


def test_concept_is_named_in_the_prompt_and_changes_the_cache_key(make_client, llm_server):
    client = make_client()
    plain = generate_descriptors(CLASSES[:1], client)
    with_concept = generate_descriptors(CLASSES[:1], client, concept="toy shape")
    assert with_concept.descriptors == plain.descriptors
    assert with_concept.provenance["concept"] == "toy shape"
    asked = llm_server.log[-1]["messages"][-1]["content"]
    assert "a red solid circle (a kind of toy shape) in a photo" in asked
    assert client.usage.requests == 2  # a different prompt is a different request
