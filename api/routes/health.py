"""Liveness and readiness (no API key needed; an admin key sees /readyz's details)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from kombu.exceptions import KombuError
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from api.deps import StateDep, is_admin
from shared.services.context import Services

router = APIRouter(tags=["health"])

# What a server that is down or refusing looks like through each client library.
DEPENDENCY_ERRORS = (SQLAlchemyError, KombuError, RedisError, BotoCoreError, ClientError, OSError)


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "a dependency does not answer"}})
def readyz(state: StateDep, request: Request) -> Any:
    """Database, broker and object store all answer. Anyone learns up or down; an admin key
    (or no keys configured) also gets each dependency's answer and the served model."""
    checks = {
        "database": _check(lambda: _ping_database(state.services)),
        "broker": _check(lambda: _ping_broker(state.services)),
        "object_store": _check(state.services.store.ping),
    }
    ready = all(v == "ok" for v in checks.values())
    if not is_admin(request):
        # Error texts name hosts, ports and versions: nothing for an anonymous caller.
        status = "ready" if ready else "unavailable"
        return JSONResponse({"status": status}, status_code=200 if ready else 503)
    model = state.serving.current
    body = {
        "status": "ready" if ready else "unavailable",
        "checks": checks,
        "model_version": model.version if model else None,
        # onnx-int8, onnx-fp32 (ONNX Runtime) or torch-fp32/bf16: what tags /predict.
        "model_backend": getattr(model.predictor, "backend", None) if model else None,
    }
    if not ready:
        return JSONResponse({"detail": body}, status_code=503)
    return body


def _ping_database(services: Services) -> None:
    with services.engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def _ping_broker(services: Services) -> None:
    with services.celery.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=3)


def _check(ping: Callable[[], object]) -> str:
    try:
        ping()
    except DEPENDENCY_ERRORS as exc:
        # Reported in the answer: the dependency is not usable.
        return f"error: {exc.__class__.__name__}: {exc}"[:300]
    return "ok"
