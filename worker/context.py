"""Per-process worker resources, built lazily on first use (never at import, never before a
prefork worker forks): settings, database sessions, object store, Celery client, and a
cache of loaded predictors."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from celery import Celery
from sqlalchemy.orm import Session, sessionmaker

from shared.db import make_engine, make_session_factory
from shared.model_files import fetch_model_dir
from shared.settings import Settings, get_settings
from shared.storage import ObjectStore, make_store

if TYPE_CHECKING:
    from shared.ner import Predictor


@dataclass
class WorkerContext:
    settings: Settings
    celery_app: Celery | None = None
    _predictors: OrderedDict[str, Any] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return make_session_factory(make_engine(self.settings.database_url))

    @cached_property
    def store(self) -> ObjectStore:
        return make_store(self.settings.storage_url, self.settings.s3_endpoint_url)

    def predictor(self, version: str, manifest_key: str, manifest_sha256: str) -> Predictor:
        """The predictor of `version`, loaded once; the two most recent stay in memory."""
        from shared.ner import Predictor  # torch loads here, in the process that predicts

        with self._lock:
            if version in self._predictors:
                self._predictors.move_to_end(version)
                return self._predictors[version]
            model_dir = fetch_model_dir(
                self.store, self.settings.model_cache_dir, version, manifest_key, manifest_sha256
            )
            predictor = Predictor.load(model_dir)
            self._predictors[version] = predictor
            while len(self._predictors) > 2:
                self._predictors.popitem(last=False)
            return predictor


_context: WorkerContext | None = None


def get_context() -> WorkerContext:
    global _context
    if _context is None:
        from worker.app import celery_app  # lazy: tasks import this module

        _context = WorkerContext(settings=get_settings(), celery_app=celery_app)
    return _context
