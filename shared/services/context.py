"""The resources service functions need, built once per process by `Services.from_settings`
(the API in its lifespan, the worker when its Celery app is made, never at import): settings,
database sessions with the outbox installed, the object store, the message sender, and the
loaded-model cache."""

from __future__ import annotations

from dataclasses import dataclass, field

from celery import Celery
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from shared.db import make_engine, make_session_factory
from shared.queue import make_celery
from shared.services.models import ModelCache
from shared.services.outbox import Outbox
from shared.settings import Settings
from shared.storage import ObjectStore, make_store


@dataclass
class Services:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    store: ObjectStore
    celery: Celery
    outbox: Outbox
    models: ModelCache = field(repr=False)

    @classmethod
    def from_settings(cls, settings: Settings, *, celery: Celery | None = None) -> Services:
        engine = make_engine(settings.database_url)
        sessions = make_session_factory(engine)
        store = make_store(settings.storage_url, settings.s3_endpoint_url)
        celery = celery or make_celery(settings)
        outbox = Outbox(celery, sessions, settings)
        outbox.install()
        models = ModelCache(store, settings.model_cache_dir, keep=settings.model_cache_size)
        return cls(settings, engine, sessions, store, celery, outbox, models)

    def close(self) -> None:
        self.engine.dispose()
