"""The production model held in memory by the API.

A watcher thread polls the registry every `model_poll_seconds`. When another version is in
production it downloads that model (sha256 checked against the manifest), loads it, and
swaps it in with one reference assignment: a batch already running keeps the predictor it
started with, the next batch gets the new one, and no request waits on a download.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy.exc import SQLAlchemyError

from api.metrics import MODEL_LOADS, MODEL_VERSION
from shared.db import session_scope
from shared.ner.runtime import MODEL_ERRORS
from shared.services import registry
from shared.services.context import Services

log = logging.getLogger(__name__)
# What fetching and loading a model raises when it cannot be served: the store (a missing
# or tampered file: ChecksumMismatch is a ValueError, ObjectNotFound a KeyError), the disk,
# and transformers/torch refusing the directory.
LOAD_ERRORS = (OSError, BotoCoreError, ClientError, *MODEL_ERRORS)
# A version that failed to load is tried again after this long, not on every poll.
RETRY_FAILED_SECONDS = 60.0


@dataclass(frozen=True)
class LoadedModel:
    version: str
    predictor: Any  # shared.ner.Predictor; typed loosely so torch is imported lazily


class ModelService:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings = services.settings
        self.current: LoadedModel | None = None
        self._failed: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="ner-model-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        # Import torch and transformers now, in this thread, rather than when the first
        # model is promoted: a promotion then costs only the download and the weights
        # (seconds), and the API answers at once meanwhile.
        import shared.ner.inference  # noqa: F401

        while not self._stop.is_set():
            try:
                self.poll_once()
            except (SQLAlchemyError, OSError) as exc:
                # Database or object store away for a moment: keep serving, poll again.
                log.warning("model watcher: %s", exc)
            self._stop.wait(self.settings.model_poll_seconds)

    def poll_once(self) -> bool:
        """Load the production version if it is not the one served; True when swapped."""
        with session_scope(self.services.sessions) as session:
            ref = registry.production_ref(session)
        if ref is None:
            return False
        version = ref.version
        if self.current is not None and self.current.version == version:
            return False
        failed_at = self._failed.get(version)
        if failed_at is not None and time.monotonic() - failed_at < RETRY_FAILED_SECONDS:
            return False
        try:
            loaded = LoadedModel(version, self.services.models.predictor(ref))
        except LOAD_ERRORS:
            # A broken or tampered model must not take the API down: the old model keeps
            # serving, the failure is logged and counted, and the load retried later.
            self._failed[version] = time.monotonic()
            MODEL_LOADS.labels("failed").inc()
            log.exception(
                "model %s could not be loaded; still serving %s",
                version,
                self.current.version if self.current else "nothing",
            )
            return False
        previous = self.current
        self.current = loaded
        # Only the served model stays in memory: a replaced one is freed once its last
        # batch ends (the batcher holds its own reference until then).
        self.services.models.retain({version})
        MODEL_LOADS.labels("loaded").inc()
        if previous is not None:
            # 0 first: with several API processes the value lives on in this process's
            # metrics file, which `remove` does not touch.
            MODEL_VERSION.labels(previous.version).set(0)
            MODEL_VERSION.remove(previous.version)
        MODEL_VERSION.labels(version).set(1)
        log.info("now serving model %s (%s)", version, getattr(loaded.predictor, "backend", "?"))
        return True
