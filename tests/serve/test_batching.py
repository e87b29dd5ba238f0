"""Micro-batching: concurrent requests share one model call; the model runs off the event loop."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from zsvl.serve.batching import MicroBatcher
from zsvl.serve.limits import RequestError

from .helpers import LiveServer, assert_same_hits, make_service


def _run(coro):
    return asyncio.run(coro)


def test_concurrent_items_form_batches_up_to_the_limit() -> None:
    sizes = []

    def double(items):
        time.sleep(0.01)  # a model call: later arrivals queue meanwhile
        sizes.append(len(items))
        return [2 * x for x in items]

    async def main():
        with ThreadPoolExecutor(1) as pool:
            b = MicroBatcher(double, max_batch=8, max_wait_s=0.01, executor=pool)
            out = await asyncio.gather(*(b.submit(i) for i in range(50)))
            await b.stop()
            return out, b.stats.to_dict()

    out, stats = _run(main())
    assert out == [2 * i for i in range(50)]
    assert max(sizes) == 8 and sum(sizes) == 50 and len(sizes) == 7  # ceil(50 / 8)
    by_size = stats.pop("by_size")
    busy = stats.pop("busy_s")
    assert stats == {"batches": 7, "items": 50, "largest_batch": 8, "mean_batch": 7.14}
    assert busy >= 7 * 0.01  # each call sleeps 10 ms
    assert {k: (v["batches"], v["items"]) for k, v in by_size.items()} == {
        "2": (1, 2),
        "5-8": (6, 48),
    }
    assert all(v["ms_per_batch"] >= 10 for v in by_size.values())


def test_batch_stats_bucket_sizes_by_powers_of_two() -> None:
    from zsvl.serve.batching import BatchStats

    stats = BatchStats()
    for size, seconds in (
        (1, 0.001),
        (2, 0.002),
        (3, 0.003),
        (4, 0.005),
        (5, 0.008),
        (8, 0.008),
        (9, 0.009),
        (64, 0.032),
        (65, 0.065),
    ):
        stats.add(size, seconds)
    got = stats.to_dict()
    assert list(got["by_size"]) == ["1", "2", "3-4", "5-8", "9-16", "33-64", "65-128"]
    assert got["by_size"]["3-4"] == {
        "batches": 2,
        "items": 7,
        "ms_per_batch": 4.0,
        "ms_per_item": round(8 / 7, 2),
    }
    assert got["by_size"]["5-8"]["ms_per_item"] == round(16 / 13, 2)
    assert got["busy_s"] == round(0.133, 3) and got["largest_batch"] == 65


def test_max_batch_one_is_one_call_per_item() -> None:
    sizes = []

    async def main():
        b = MicroBatcher(lambda items: sizes.append(len(items)) or items, max_batch=1, max_wait_s=0)
        out = await asyncio.gather(*(b.submit(i) for i in range(10)))
        await b.stop()
        return out

    assert _run(main()) == list(range(10)) and sizes == [1] * 10


def test_a_lone_item_waits_for_company_only_after_a_batch_had_some() -> None:
    sizes = []

    async def main():
        b = MicroBatcher(
            lambda items: sizes.append(len(items)) or items, max_batch=4, max_wait_s=0.2
        )
        t0 = time.perf_counter()
        await b.submit(0)  # nothing ran yet: no company to expect, runs at once
        first = time.perf_counter() - t0
        await asyncio.gather(*(b.submit(i) for i in range(4)))  # a full batch goes at once
        t0 = time.perf_counter()
        await b.submit(1)  # after a batch of 4: waits up to max_wait for company
        after_batch = time.perf_counter() - t0
        t0 = time.perf_counter()
        await b.submit(2)  # after a batch of 1: a lone client, runs at once
        after_lone = time.perf_counter() - t0
        await b.stop()
        return first, after_batch, after_lone

    first, after_batch, after_lone = _run(main())
    assert sizes == [1, 4, 1, 1]
    assert 0.2 <= after_batch < 2.0
    assert first < 0.1 and after_lone < 0.1


def test_a_failing_batch_fails_its_callers_only() -> None:
    def fn(items):
        if "bad" in items:
            raise ValueError("bad item in the batch")
        return items

    async def main():
        b = MicroBatcher(fn, max_batch=4, max_wait_s=0.05)
        first = await asyncio.gather(b.submit("ok"), b.submit("bad"), return_exceptions=True)
        later = await b.submit("fine")
        await b.stop()
        return first, later

    first, later = _run(main())
    assert all(isinstance(r, ValueError) for r in first) and later == "fine"


def test_a_full_queue_answers_busy() -> None:
    release = threading.Event()

    async def main():
        with ThreadPoolExecutor(1) as pool:
            b = MicroBatcher(
                lambda items: release.wait(5) and items,
                max_batch=1,
                max_wait_s=0,
                max_queue=2,
                executor=pool,
            )
            running = asyncio.ensure_future(b.submit(0))
            await asyncio.sleep(0.05)  # item 0 is in the model call, the queue is empty
            queued = [asyncio.ensure_future(b.submit(i)) for i in (1, 2)]
            await asyncio.sleep(0)
            with pytest.raises(RequestError, match="requests waiting") as info:
                await b.submit(3)
            release.set()
            out = await asyncio.gather(running, *queued)
            await b.stop()
            return info.value.status, out

    status, out = _run(main())
    assert status == 503 and out == [0, 1, 2]


class CountingEncoder:
    """The toy encoder, counting text-tower calls and optionally slowing them down."""

    def __init__(self, encoder, delay: float = 0.0) -> None:
        self._encoder = encoder
        self.delay = delay
        self.text_calls: list[int] = []

    def encode_texts(self, texts, **kwargs):
        self.text_calls.append(len(texts))
        time.sleep(self.delay)
        return self._encoder.encode_texts(texts, **kwargs)

    def __getattr__(self, name):
        return getattr(self._encoder, name)


def test_concurrent_searches_share_one_forward_and_equal_the_library(
    toy_encoder, toy_index_dir, toy_index
) -> None:
    from zsvl.serve.service import SearchItem

    counting = CountingEncoder(toy_encoder, delay=0.05)
    svc = make_service(counting, toy_index_dir)
    queries = [
        f"a photo of a {c} {s}."
        for c in ("red", "blue", "green", "pink")
        for s in ("star", "ring", "cross", "arrow")
    ]  # 16 concurrent requests

    async def main():
        svc.start()
        out = await asyncio.gather(
            *(svc.search([SearchItem("toy", q, 5 + i % 3)]) for i, q in enumerate(queries))
        )
        await svc.stop()
        return out

    out = _run(main())
    svc.close()
    assert sum(counting.text_calls) == 16 and len(counting.text_calls) <= 3
    assert svc.search_batcher.stats.largest >= 8
    for i, (q, (hits,)) in enumerate(zip(queries, out, strict=True)):
        want = toy_index.search_texts([q], 5 + i % 3)
        assert_same_hits(hits, want.ids[0], want.scores[0], want.captions[0])


def test_the_event_loop_keeps_answering_during_a_model_call(toy_encoder, toy_index_dir) -> None:
    from zsvl.serve import create_app

    slow = CountingEncoder(toy_encoder, delay=1.5)
    svc = make_service(slow, toy_index_dir)
    with LiveServer(create_app(svc)) as server:

        def search():
            req = urllib.request.Request(
                server.url + "/search",
                method="POST",
                data=json.dumps({"query": "a red star"}).encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status

        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(search)
            while not slow.text_calls:  # the slow model call has started
                time.sleep(0.01)
            t0 = time.perf_counter()
            with urllib.request.urlopen(server.url + "/health", timeout=30) as r:
                assert r.status == 200
            health_s = time.perf_counter() - t0
            assert pending.result() == 200
    svc.close()
    assert health_s < 1.0, f"/health took {health_s:.2f} s during a 1.5 s model call"


def test_threads_cap_the_model_thread_and_show_in_health(toy_encoder, toy_index_dir) -> None:
    import torch

    from zsvl.serve.threads import default_threads

    before = torch.get_num_threads()
    svc = make_service(toy_encoder, toy_index_dir, threads=1)
    try:
        seen = svc.executor.submit(torch.get_num_threads).result()
        assert seen == 1 and svc.health()["threads"] == 1
    finally:
        svc.close()
        torch.set_num_threads(before)  # the setting is process-wide
    plain = make_service(toy_encoder, toy_index_dir)  # None: the process's setting is kept
    try:
        assert plain.executor.submit(torch.get_num_threads).result() == before
        assert plain.health()["threads"] is None
    finally:
        plain.close()
    assert 1 <= default_threads() <= max(1, (os.cpu_count() or 1) - 1)
    with pytest.raises(ValueError, match="threads must be >= 1"):
        make_service(toy_encoder, toy_index_dir, threads=0)


def test_a_batch_of_mixed_lengths_is_encoded_in_length_groups(
    toy_encoder, toy_index_dir, toy_index, monkeypatch
) -> None:
    from zsvl.models import textenc
    from zsvl.serve.service import SearchItem

    forwards = []
    real = textenc.encode_tokens

    def counting(model, tokens, **kwargs):
        forwards.append(len(tokens))
        return real(model, tokens, **kwargs)

    monkeypatch.setattr(textenc, "encode_tokens", counting)
    counting_encoder = CountingEncoder(toy_encoder)
    svc = make_service(counting_encoder, toy_index_dir)
    short = [f"a {c} star" for c in ("red", "blue", "green", "pink")] * 2
    long = [
        f"a photo of a large bright {c} star drawn on a plain background next to a small "
        f"ring and a cross, seen from far away on a sunny day with a lot of detail"
        for c in ("red", "blue", "green", "pink")
    ] * 2
    queries = [q for pair in zip(short, long, strict=True) for q in pair]  # mixed order
    try:
        out = svc._search_batch([SearchItem("toy", q, 5) for q in queries])
    finally:
        svc.close()
    assert counting_encoder.text_calls == [16]  # one encoder call for the batch
    if str(toy_encoder.device).startswith("cpu"):
        assert sorted(forwards) == [8, 8]  # short and long apart, not padded together
    else:  # on a GPU a forward's cost is mostly fixed: one forward for the batch
        assert forwards == [16]
    for q, hits in zip(queries, out, strict=True):
        want = toy_index.search_texts([q], 5)
        assert_same_hits(hits, want.ids[0], want.scores[0], want.captions[0])


def test_thread_policy_gives_long_buckets_the_long_threads() -> None:
    from zsvl.serve.threads import ThreadPolicy

    policy = ThreadPolicy(1, 4, long_call_s=0.05, timings=3)
    assert policy.threads_for("search", 32) == 1  # not timed yet: base threads
    for seconds in (0.30, 0.28, 0.31):  # a batch of 32 took ~300 ms on one thread, 3 times
        assert policy.threads_for("search", 32) == 1
        policy.record("search", 32, 1, seconds)
    for seconds in (0.073, 0.002, 0.002):  # a lone query: one slow outlier, then 2 ms
        policy.record("search", 1, 1, seconds)
    assert policy.threads_for("search", 32) == 4 and policy.threads_for("search", 17) == 4
    assert policy.threads_for("search", 16) == 1  # another bucket, not timed
    assert policy.threads_for("search", 1) == 1  # the outlier does not count
    assert policy.threads_for("images", 32) == 1  # another kind
    policy.record("search", 32, 4, 0.01)  # fast on 4 threads: the base-thread timings stay
    assert policy.threads_for("search", 32) == 4
    assert policy.to_dict()["long_buckets"] == ["search:32"]
    with pytest.raises(ValueError, match="base <= long"):
        ThreadPolicy(2, 1)


def test_a_slow_batch_runs_on_the_long_call_threads_next_time(toy_encoder, toy_index_dir) -> None:
    import torch

    from zsvl.serve.service import SearchItem

    class ThreadSpy(CountingEncoder):
        def encode_texts(self, texts, **kwargs):
            self.threads.append(torch.get_num_threads())
            return super().encode_texts(texts, **kwargs)

    spy = ThreadSpy(toy_encoder, delay=0.06)  # every text forward takes > 50 ms
    spy.threads = []
    before = torch.get_num_threads()
    svc = make_service(spy, toy_index_dir, threads=1, long_call_threads=2)
    svc.thread_policy.timings = 2
    batch = [SearchItem("toy", f"a {c} star", 5) for c in ("red", "blue", "green", "pink")]
    try:
        for items in [batch] * 3 + [batch[:1]] * 3:
            svc.executor.submit(svc._search_batch, items).result()
        assert spy.threads == [1, 1, 2, 1, 1, 2]  # each bucket timed twice on 1 thread, then 2
        assert svc.health()["thread_policy"]["long_buckets"] == ["search:1", "search:4"]
    finally:
        svc.close()
        torch.set_num_threads(before)
