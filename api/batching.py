"""Micro-batching for /predict: requests arriving within a few milliseconds of each other
run as one forward pass, bounded in size, off the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from api.metrics import PREDICT_BATCH, PREDICT_REQUESTS_PER_BATCH
from api.model_service import LoadedModel, ModelService
from shared.errors import NO_MODEL_DETAIL, Unavailable

log = logging.getLogger(__name__)


def _no_model() -> Unavailable:
    return Unavailable(NO_MODEL_DETAIL, retry_after=30)


@dataclass
class _Pending:
    texts: list[str]
    future: asyncio.Future[tuple[str, list[list[dict[str, Any]]]]] = field(repr=False)


class MicroBatcher:
    def __init__(self, models: ModelService, window_ms: float, max_batch: int) -> None:
        self.models = models
        self.window = window_ms / 1000.0
        self.max_batch = max_batch
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="predict-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def predict(self, texts: list[str]) -> tuple[str, list[list[dict[str, Any]]]]:
        """(model version, entities per text), computed in a shared batch."""
        if self.models.current is None:
            raise _no_model()
        future: asyncio.Future[tuple[str, list[list[dict[str, Any]]]]] = (
            asyncio.get_running_loop().create_future()
        )
        await self._queue.put(_Pending(texts, future))
        return await future

    async def _gather(self) -> list[_Pending]:
        batch = [await self._queue.get()]
        size = len(batch[0].texts)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.window
        while size < self.max_batch:
            remaining = deadline - loop.time()
            try:
                item = (
                    self._queue.get_nowait()
                    if remaining <= 0 or not self._queue.empty()
                    else await asyncio.wait_for(self._queue.get(), remaining)
                )
            except (asyncio.QueueEmpty, TimeoutError):
                break
            if size + len(item.texts) > self.max_batch:
                # Keep the bound: this one starts the next batch.
                self._queue.put_nowait(item)
                break
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
            results = await asyncio.to_thread(loaded.predictor.predict, texts)
        except Exception as exc:
            # Handed to every waiting request (each answers 500); the batcher goes on.
            log.exception("prediction failed for a batch of %d texts", len(texts))
            for p in batch:
                if not p.future.done():
                    p.future.set_exception(exc)
            return
        start = 0
        for p in batch:
            part = results[start : start + len(p.texts)]
            start += len(p.texts)
            if not p.future.done():
                p.future.set_result((loaded.version, part))
