"""One handler maps the domain's errors (shared.errors) to HTTP statuses, and the errors of
a database, broker or object store that does not answer to 503 with Retry-After: routes
hold no try/except of their own. Every error body is `{"detail": ...}`."""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import BotoCoreError, ConnectionError, EndpointConnectionError
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from kombu.exceptions import OperationalError as BrokerOperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import DBAPIError, OperationalError, TimeoutError

from shared.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    TooLarge,
    Unauthorized,
    Unavailable,
)

log = logging.getLogger(__name__)

STATUS_OF = {
    NotFound: 404,
    Conflict: 409,
    InvalidInput: 422,
    TooLarge: 413,
    Unauthorized: 401,
    Forbidden: 403,
    Unavailable: 503,
}
# What a dependency that is down or unreachable looks like through each client library.
DEPENDENCY_DOWN = (
    DBAPIError,  # the database refused or dropped the connection (checked below)
    TimeoutError,  # no connection free in the pool in time
    BrokerOperationalError,
    RedisConnectionError,
    EndpointConnectionError,
    ConnectionError,
)
RETRY_AFTER_SECONDS = 5


def status_of(exc: DomainError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_OF:
            return STATUS_OF[cls]
    return 400


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain_error(_request: Request, exc: DomainError) -> JSONResponse:
        status = status_of(exc)
        headers = {}
        if isinstance(exc, Unavailable):
            headers["Retry-After"] = str(exc.retry_after)
        if isinstance(exc, Unauthorized):
            headers["WWW-Authenticate"] = "Bearer"
        return JSONResponse({"detail": exc.detail}, status_code=status, headers=headers)

    async def _dependency_down(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, DBAPIError) and not _is_connection_error(exc):
            raise exc  # a bug, not an outage: a 500 with the traceback in the log
        log.warning("%s %s: a dependency is unavailable: %s", request.method, request.url.path, exc)
        return JSONResponse(
            {
                "detail": "a server this service needs is unavailable; try again later "
                f"({type(exc).__name__})"
            },
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    for exc_class in (*DEPENDENCY_DOWN, BotoCoreError):
        app.add_exception_handler(exc_class, _dependency_down)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own answer, except that the input echoed back can itself be text that
        # cannot be encoded (a lone surrogate), which would turn a 422 into a 500.
        return JSONResponse({"detail": _encodable(jsonable_encoder(exc.errors()))}, 422)


def _encodable(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, list):
        return [_encodable(v) for v in value]
    if isinstance(value, dict):
        return {_encodable(k): _encodable(v) for k, v in value.items()}
    return value


def _is_connection_error(exc: DBAPIError) -> bool:
    return isinstance(exc, OperationalError) or bool(exc.connection_invalidated)
