"""The /predict micro-batcher isolates callers: a text that breaks the model fails only its
own request (422), the queue is bounded (503 at once), each request has a deadline (503).
A stand-in predictor is enough here: the batcher knows nothing of the model."""

from __future__ import annotations

import asyncio
import threading
import time
from types import SimpleNamespace

import pytest

from api.batching import MicroBatcher
from api.model_service import LoadedModel
from shared.errors import InvalidInput, Unavailable


class Predictor:
    """Tags every word "X"; fails on any text holding "BOOM"; sleeps `delay` per batch."""

    def __init__(self, delay: float = 0.0, broken: bool = False) -> None:
        self.delay, self.broken = delay, broken
        self.batches: list[int] = []
        self.lock = threading.Lock()

    def predict(self, texts: list[str]) -> list[list[dict]]:
        with self.lock:
            self.batches.append(len(texts))
        time.sleep(self.delay)
        if self.broken or any("BOOM" in t for t in texts):
            raise ValueError("cannot tag this")
        return [[{"label": "X", "text": t}] for t in texts]


def batcher(predictor: Predictor, **kw) -> MicroBatcher:
    models = SimpleNamespace(current=LoadedModel("v1", predictor))
    return MicroBatcher(models, window_ms=20, max_batch=kw.pop("max_batch", 64), **kw)  # type: ignore[arg-type]


async def _with(b: MicroBatcher, coro):
    b.start()
    try:
        return await coro
    finally:
        await b.stop()


def test_one_bad_text_fails_only_its_request() -> None:
    predictor = Predictor()
    b = batcher(predictor)

    async def go():
        return await asyncio.gather(
            *(b.predict([f"good {i}"]) for i in range(10)),
            b.predict(["fine", "BOOM here"]),
            return_exceptions=True,
        )

    results = asyncio.run(_with(b, go()))
    good, bad = results[:10], results[10]
    assert all(r == ("v1", [[{"label": "X", "text": f"good {i}"}]]) for i, r in enumerate(good))
    assert isinstance(bad, InvalidInput) and "text 1 could not be processed" in bad.detail
    # They were batched together first (one pass of 12 texts), then isolated.
    assert predictor.batches[0] == 12


def test_a_broken_model_is_a_server_error_not_the_callers() -> None:
    b = batcher(Predictor(broken=True))

    async def go():
        return await asyncio.gather(b.predict(["a"]), return_exceptions=True)

    assert isinstance(asyncio.run(_with(b, go()))[0], ValueError)


def test_a_full_queue_answers_503_at_once() -> None:
    b = batcher(Predictor(delay=0.3), max_batch=2, max_queued_texts=6)

    async def go():
        tasks = [asyncio.create_task(b.predict(["t"] * 2)) for _ in range(3)]
        await asyncio.sleep(0.05)  # the first batch runs; 2 requests (4 texts) wait
        started = time.monotonic()
        with pytest.raises(Unavailable) as excinfo:
            await b.predict(["one", "more", "time"])
        refused_in = time.monotonic() - started
        done = await asyncio.gather(*tasks, return_exceptions=True)
        return excinfo.value, refused_in, done

    error, refused_in, done = asyncio.run(_with(b, go()))
    assert refused_in < 0.05 and error.retry_after >= 1 and "busy" in error.detail
    assert all(isinstance(d, tuple) for d in done)  # the ones admitted all got answers


def test_a_request_past_its_deadline_answers_503_and_others_go_on() -> None:
    predictor = Predictor(delay=0.4)
    b = batcher(predictor, max_batch=1, timeout_seconds=0.3)

    async def go():
        return await asyncio.gather(b.predict(["a"]), b.predict(["b"]), return_exceptions=True)

    first, second = asyncio.run(_with(b, go()))
    assert isinstance(first, Unavailable) and "did not answer within 0.3 s" in first.detail
    assert isinstance(second, Unavailable)
    # The second had not started when its deadline passed: it was dropped, not computed.
    assert predictor.batches == [1]


def test_concurrent_requests_still_share_batches() -> None:
    predictor = Predictor(delay=0.01)
    b = batcher(predictor)

    async def go():
        return await asyncio.gather(*(b.predict([f"t{i}"]) for i in range(48)))

    results = asyncio.run(_with(b, go()))
    assert [r[1][0][0]["text"] for r in results] == [f"t{i}" for i in range(48)]
    assert max(predictor.batches) >= 16 and len(predictor.batches) <= 4


def test_a_lone_request_to_an_idle_service_does_not_wait_out_the_window() -> None:
    predictor = Predictor()
    models = SimpleNamespace(current=LoadedModel("v1", predictor))
    b = MicroBatcher(models, window_ms=500, max_batch=64)  # type: ignore[arg-type]

    async def go():
        timings = []
        for i in range(3):
            start = time.perf_counter()
            await b.predict([f"t{i}"])
            timings.append(time.perf_counter() - start)
        return timings

    timings = asyncio.run(_with(b, go()))
    # Each answered in far less than the 500 ms window, one batch each.
    assert max(timings) < 0.2
    assert predictor.batches == [1, 1, 1]
