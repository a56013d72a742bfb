"""What the API builds at startup (lifespan) and routes reach through dependencies."""

from __future__ import annotations

from dataclasses import dataclass

from api.batching import MicroBatcher
from api.model_service import ModelService
from shared.services.context import Services
from shared.services.keys import KeyResolver


@dataclass
class AppState:
    services: Services
    serving: ModelService
    batcher: MicroBatcher
    keys: KeyResolver
