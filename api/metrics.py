"""Prometheus metrics of the API (served at /metrics)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "ner_http_requests_total", "HTTP requests by route and status", ["method", "route", "status"]
)
LATENCY = Histogram(
    "ner_http_request_duration_seconds", "HTTP request latency by route", ["method", "route"]
)
JOBS = Gauge("ner_jobs", "Jobs in the database by type and status", ["type", "status"])
PREDICT_BATCH = Histogram(
    "ner_predict_batch_texts",
    "Texts per /predict micro-batch",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)
PREDICT_REQUESTS_PER_BATCH = Histogram(
    "ner_predict_batch_requests",
    "Requests gathered into one /predict micro-batch",
    buckets=(1, 2, 4, 8, 16, 32, 64),
)
PREDICT_REJECTED = Counter(
    "ner_predict_rejected_total",
    "/predict requests answered 503 by the batcher: queue full, or deadline passed",
    ["reason"],
)
MODEL_LOADS = Counter("ner_model_loads_total", "Production model loads by outcome", ["outcome"])
MODEL_VERSION = Gauge(
    "ner_serving_model_info", "The model version /predict serves (value 1)", ["version"]
)


def install_request_metrics(app: FastAPI) -> None:
    @app.middleware("http")
    async def _measure(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        start = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            # The route template, not the raw path: ids would make one series per job.
            route = request.scope.get("route")
            path = getattr(route, "path", "unmatched")
            REQUESTS.labels(request.method, path, str(status)).inc()
            LATENCY.labels(request.method, path).observe(time.perf_counter() - start)
