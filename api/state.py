"""What the API builds at startup (lifespan) and routes reach through dependencies."""

from __future__ import annotations

from dataclasses import dataclass

from celery import Celery
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.batching import MicroBatcher
from api.model_service import ModelService
from shared.settings import Settings
from shared.storage import ObjectStore


@dataclass
class AppState:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    store: ObjectStore
    celery: Celery
    models: ModelService
    batcher: MicroBatcher
