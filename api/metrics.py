"""Prometheus metrics of the API (served at /metrics).

With several API processes (`ner api --workers N`) every process writes its values to
files in one directory and /metrics sums them (prometheus-client's multiprocess mode):
a scrape, whichever process answers it, counts the requests all of them served.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import FastAPI
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# prometheus-client reads it when it is imported: set before the API processes start.
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"

REQUESTS = Counter(
    "ner_http_requests_total", "HTTP requests by route and status", ["method", "route", "status"]
)
LATENCY = Histogram(
    "ner_http_request_duration_seconds", "HTTP request latency by route", ["method", "route"]
)
# Set from the database by the process answering the scrape: across processes, the
# latest value is the true one.
JOBS = Gauge(
    "ner_jobs",
    "Jobs in the database by type and status",
    ["type", "status"],
    multiprocess_mode="mostrecent",
)
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
# 1 while any process serves the version (each loads a promotion on its own poll).
MODEL_VERSION = Gauge(
    "ner_serving_model_info",
    "The model version /predict serves (value 1)",
    ["version"],
    multiprocess_mode="max",
)


def exposition() -> bytes:
    """The text /metrics serves: this process's metrics, or every API process's summed."""
    if not os.environ.get(MULTIPROCESS_DIR):
        return generate_latest()
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry)


@contextmanager
def shared_between_processes() -> Iterator[None]:
    """Multiprocess mode for the API processes started inside: a fresh directory for their
    values, removed afterwards. A directory the operator set is used as it is (clearing it
    between runs is then theirs to do, as prometheus-client asks)."""
    if os.environ.get(MULTIPROCESS_DIR):
        yield
        return
    folder = tempfile.mkdtemp(prefix="ner-api-metrics-")
    os.environ[MULTIPROCESS_DIR] = folder
    try:
        yield
    finally:
        os.environ.pop(MULTIPROCESS_DIR, None)
        shutil.rmtree(folder, ignore_errors=True)


class RequestMetrics:
    """Counts and times every request by route template and status.

    A pure ASGI middleware, not `@app.middleware("http")`: Starlette's BaseHTTPMiddleware
    runs every request through a task group and memory streams, about 0.3 ms each on
    these CPUs, a tenth of a quick /predict."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            # The route template, not the raw path: ids would make one series per job.
            # (The router records the matched route in this same scope.)
            path = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"]
            REQUESTS.labels(method, path, str(status)).inc()
            LATENCY.labels(method, path).observe(time.perf_counter() - start)


def install_request_metrics(app: FastAPI) -> None:
    app.add_middleware(RequestMetrics)
