"""Errors a route raises for a caller's mistake or an unavailable dependency; one handler
renders each as `{"detail": ...}` with its status code."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


class ApiError(Exception):
    status_code = 400

    def __init__(self, detail: Any) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(ApiError):
    status_code = 404


class Conflict(ApiError):
    status_code = 409


class PayloadTooLarge(ApiError):
    status_code = 413


class Unprocessable(ApiError):
    status_code = 422


class ServiceUnavailable(ApiError):
    status_code = 503


NO_MODEL_DETAIL = (
    "no model is in production yet: train a model first: POST /datasets with a labelled "
    'file, then POST /jobs/train {"dataset_id": ...}; the first finished training is '
    "promoted automatically (or POST /models/{version}/promote)"
)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
