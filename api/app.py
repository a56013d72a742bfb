"""The FastAPI application factory. Engines and clients are built in the lifespan, from
settings, never at import."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.auth import install_authentication
from api.batching import MicroBatcher
from api.body_limit import BodyLimitMiddleware
from api.errors import install_error_handlers
from api.metrics import install_request_metrics
from api.model_service import ModelService
from api.routes import api_router
from api.routing import merge_alternative_bodies
from api.state import AppState
from shared.queue import make_celery
from shared.services.context import Services
from shared.services.keys import KeyResolver
from shared.settings import Settings, get_settings

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = Services.from_settings(settings, celery=make_celery(settings, name="ner-api"))
        serving = ModelService(services)
        batcher = MicroBatcher(
            serving,
            settings.predict_batch_window_ms,
            settings.predict_max_batch,
            max_queued_texts=settings.predict_max_queued_texts,
            timeout_seconds=settings.predict_timeout_seconds,
        )
        keys = KeyResolver(services.sessions, settings)
        app.state.ner = AppState(services=services, serving=serving, batcher=batcher, keys=keys)
        serving.start()
        batcher.start()
        try:
            yield
        finally:
            await batcher.stop()
            serving.stop()
            services.close()

    app = FastAPI(
        title="NER service",
        summary="Train and serve Named Entity Recognition models",
        version="0.1.0",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    # Bodies are bounded as they stream in; /predict's body is a few texts. Inside the
    # metrics middleware, so a refused body is counted as a 413.
    app.add_middleware(
        BodyLimitMiddleware,
        default=settings.max_upload_bytes,
        per_path={"/predict": settings.max_predict_body_bytes},
    )
    install_request_metrics(app)
    # Last, so outermost: who is calling is settled before any other middleware or route
    # can read the body.
    install_authentication(app)
    app.include_router(api_router)
    merge_alternative_bodies(app)
    return app
