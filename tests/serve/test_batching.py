"""Micro-batching: concurrent requests share one model call; the model runs off the event loop."""

from __future__ import annotations

import asyncio
import json
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
    assert stats == {"batches": 7, "items": 50, "largest_batch": 8, "mean_batch": 7.14}


def test_max_batch_one_is_one_call_per_item() -> None:
    sizes = []

    async def main():
        b = MicroBatcher(lambda items: sizes.append(len(items)) or items, max_batch=1,
                         max_wait_s=0)
        out = await asyncio.gather(*(b.submit(i) for i in range(10)))
        await b.stop()
        return out

    assert _run(main()) == list(range(10)) and sizes == [1] * 10


def test_a_lone_item_waits_at_most_max_wait_for_company() -> None:
    async def main():
        b = MicroBatcher(lambda items: items, max_batch=4, max_wait_s=0.2)
        t0 = time.perf_counter()
        await b.submit(1)
        lone = time.perf_counter() - t0
        t0 = time.perf_counter()
        await asyncio.gather(*(b.submit(i) for i in range(4)))  # a full batch goes at once
        full = time.perf_counter() - t0
        await b.stop()
        return lone, full

    lone, full = _run(main())
    assert 0.2 <= lone < 2.0 and full < lone


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
            b = MicroBatcher(lambda items: release.wait(5) and items, max_batch=1,
                             max_wait_s=0, max_queue=2, executor=pool)
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


def test_concurrent_searches_share_one_forward_and_equal_the_library(toy_encoder, toy_index_dir,
                                                                     toy_index) -> None:
    from zsvl.serve.service import SearchItem

    counting = CountingEncoder(toy_encoder, delay=0.05)
    svc = make_service(counting, toy_index_dir)
    queries = [f"a photo of a {c} {s}." for c in ("red", "blue", "green", "pink")
               for s in ("star", "ring", "cross", "arrow")]  # 16 concurrent requests

    async def main():
        svc.start()
        out = await asyncio.gather(*(svc.search([SearchItem("toy", q, 5 + i % 3)])
                                     for i, q in enumerate(queries)))
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
            req = urllib.request.Request(server.url + "/search", method="POST",
                                         data=json.dumps({"query": "a red star"}).encode(),
                                         headers={"Content-Type": "application/json"})
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
