"""Micro-batching for /predict: requests waiting together run as one forward pass, bounded
in size, off the event loop; a request to an idle service runs at once.

Callers are isolated from each other in three ways:
- the queue is bounded (in texts): past it a request is refused at once with 503 and
  Retry-After, rather than joining an ever-growing wait;
- each request has a deadline: when it passes, the request answers 503 with Retry-After and
  its texts are dropped from the batch if they have not started;
- a batch that fails is run again text by text, so a text that cannot be processed fails
  only the request that sent it (422), and the others get their answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from api.metrics import PREDICT_BATCH, PREDICT_REJECTED, PREDICT_REQUESTS_PER_BATCH
from api.model_service import LoadedModel, ModelService
from shared.errors import NO_MODEL_DETAIL, InvalidInput, Unavailable
from shared.ner.runtime import MODEL_ERRORS, release_free_memory

log = logging.getLogger(__name__)

Entities = list[dict[str, Any]]
# A text that any working model can tag: tells "this text is at fault" from "the model is".
_PROBE = "Probe text ."


def _no_model() -> Unavailable:
    return Unavailable(NO_MODEL_DETAIL, retry_after=30)


@dataclass
class _Pending:
    texts: list[str]
    future: asyncio.Future[tuple[str, list[Entities]]] = field(repr=False)


class MicroBatcher:
    def __init__(
        self,
        models: ModelService,
        window_ms: float,
        max_batch: int,
        *,
        max_queued_texts: int = 1024,
        timeout_seconds: float = 30.0,
    ) -> None:
        self.models = models
        self.window = window_ms / 1000.0
        self.max_batch = max_batch
        self.max_queued_texts = max_queued_texts
        self.timeout = timeout_seconds
        self._waiting: deque[_Pending] = deque()
        self._queued_texts = 0
        self._arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # One thread runs every forward pass: batches run one at a time anyway, and torch's
        # allocations stay in one malloc arena instead of fragmenting one per pool thread.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="predict")

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="predict-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._executor.shutdown(wait=False, cancel_futures=True)

    @property
    def queued_texts(self) -> int:
        return self._queued_texts

    async def predict(self, texts: list[str]) -> tuple[str, list[Entities]]:
        """(model version, entities per text), computed in a shared batch."""
        if self.models.current is None:
            raise _no_model()
        if self._queued_texts + len(texts) > self.max_queued_texts:
            PREDICT_REJECTED.labels("queue_full").inc()
            raise Unavailable(
                f"/predict is busy: {self._queued_texts} texts are waiting (the bound is "
                f"{self.max_queued_texts}); try again shortly",
                retry_after=1,
            )
        future: asyncio.Future[tuple[str, list[Entities]]] = (
            asyncio.get_running_loop().create_future()
        )
        self._waiting.append(_Pending(texts, future))
        self._queued_texts += len(texts)
        self._arrived.set()
        try:
            # shield: the deadline abandons the wait, not the batch other requests share.
            return await asyncio.wait_for(asyncio.shield(future), self.timeout)
        except TimeoutError:
            # Not started yet: the batcher skips it (a done future) and frees its place.
            future.cancel()
            PREDICT_REJECTED.labels("deadline").inc()
            raise Unavailable(
                f"/predict did not answer within {self.timeout:g} s (the service is busy); "
                "try again shortly",
                retry_after=2,
            ) from None

    async def _next(self) -> _Pending:
        while not self._waiting:
            self._arrived.clear()
            await self._arrived.wait()
        item = self._waiting.popleft()
        self._queued_texts -= len(item.texts)
        return item

    async def _gather(self) -> list[_Pending]:
        """The next batch. Requests that came while the last batch ran go together at once;
        a lone request never waits (an idle service answers without a batching window);
        only when others are queued behind the first does the batch wait up to `window`
        for more, as a busy service's requests come in bursts."""
        busy = len(self._waiting) > 1
        batch = [await self._next()]
        size = len(batch[0].texts)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.window if busy else 0.0)
        while size < self.max_batch:
            self._arrived.clear()  # before the check: an arrival after it sets it again
            if not self._waiting:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._arrived.wait(), remaining)
                if not self._waiting:
                    break
            # Keep the bound: the next request (left first in line) starts the next batch.
            if size + len(self._waiting[0].texts) > self.max_batch:
                break
            item = await self._next()
            batch.append(item)
            size += len(item.texts)
        return batch

    async def _run(self) -> None:
        while True:
            batch = [p for p in await self._gather() if not p.future.done()]
            if not batch:
                continue
            loaded = self.models.current
            if loaded is None:
                for p in batch:
                    p.future.set_exception(_no_model())
                continue
            await self._run_batch(loaded, batch)

    async def _run_batch(self, loaded: LoadedModel, batch: list[_Pending]) -> None:
        texts = [t for p in batch for t in p.texts]
        PREDICT_BATCH.observe(len(texts))
        PREDICT_REQUESTS_PER_BATCH.observe(len(batch))
        try:
            results = await self._infer(loaded, texts)
        except MODEL_ERRORS:
            log.warning("a /predict batch of %d texts failed; isolating the culprit", len(texts))
            await self._run_one_by_one(loaded, batch)
            return
        start = 0
        for p in batch:
            part = results[start : start + len(p.texts)]
            start += len(p.texts)
            if not p.future.done():
                p.future.set_result((loaded.version, part))

    async def _run_one_by_one(self, loaded: LoadedModel, batch: list[_Pending]) -> None:
        """Each text alone: a request whose texts all work gets its answer; one holding a
        text that fails alone (while the model tags others) gets a 422 naming it."""
        model_works: bool | None = None
        for p in batch:
            answers: list[Entities] = []
            error: Exception | None = None
            for i, text in enumerate(p.texts):
                try:
                    answers.extend(await self._infer(loaded, [text]))
                except MODEL_ERRORS as exc:
                    if model_works is None:
                        model_works = await self._model_works(loaded)
                    if not model_works:
                        error = exc  # the model is at fault, not the caller: a 500
                        log.exception("the model fails on every text")
                    else:
                        error = InvalidInput(
                            f"text {i} could not be processed ({type(exc).__name__}); "
                            "the other texts of the batch were not affected"
                        )
                    break
            if p.future.done():
                continue
            if error is not None:
                p.future.set_exception(error)
            else:
                p.future.set_result((loaded.version, answers))

    async def _infer(self, loaded: LoadedModel, texts: list[str]) -> list[Entities]:
        """The model's work, on the one inference thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, _predict_and_trim, loaded, texts)

    async def _model_works(self, loaded: LoadedModel) -> bool:
        try:
            await self._infer(loaded, [_PROBE])
        except MODEL_ERRORS:
            return False
        return True


# Characters of text in one batch after which freed memory is handed back to the system.
TRIM_AFTER_CHARS = 20_000


def _predict_and_trim(loaded: LoadedModel, texts: list[str]) -> list[Entities]:
    try:
        return loaded.predictor.predict(texts)
    finally:
        # A long text's activations are hundreds of MB, freed at once but kept by malloc
        # for reuse: without this the API's resident memory only grows under mixed traffic.
        if sum(len(t) for t in texts) > TRIM_AFTER_CHARS:
            release_free_memory()
