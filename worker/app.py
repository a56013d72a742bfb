"""The worker's Celery app, made by `create_worker_app(settings)` like the API's
`create_app(settings)`: the app, its tasks and the per-process services, with no module-level
state. `ner worker` runs it; `celery -A "worker.app:create_worker_app()" worker` works too.

Tasks are thin: each runs one job by id through the service layer
(shared.services.execution.run_job), which claims it, keeps its heartbeat and records how it
ended. Heavy resources (database engine, object store, models) are built on first use in
the process that runs the task, never before a prefork worker forks.
"""

from __future__ import annotations

import logging
import threading
from functools import cached_property

from celery import Celery, Task
from celery.signals import worker_ready, worker_shutdown

from shared.queue import PREDICT_BULK_TASK, TRAIN_TASK, celery_config
from shared.services.bulk import run_bulk
from shared.services.context import Services
from shared.services.execution import JobBody, TransientJobError, run_job
from shared.services.recovery import start_sweeper
from shared.settings import Settings, get_settings

log = logging.getLogger(__name__)

# Retries: only for TransientJobError, with growing pauses; the last try fails the job.
RETRY_OPTIONS = {"bind": True, "ignore_result": True, "max_retries": 3}


class WorkerApp(Celery):
    """A Celery app that carries the settings and the process's services."""

    def __init__(self, settings: Settings) -> None:
        super().__init__("ner-worker", set_as_current=False)
        self.ner_settings = settings
        self.conf.update(celery_config(settings))
        self._sweeper_stop: threading.Event | None = None

    @cached_property
    def services(self) -> Services:
        return Services.from_settings(self.ner_settings, celery=self)


def _run_with_retries(task: Task, job_id: str, body: JobBody) -> str:
    app = task.app
    assert isinstance(app, WorkerApp)
    last_try = task.request.retries >= (task.max_retries or 0)
    try:
        return run_job(app.services, job_id, body, can_retry=not last_try)
    except TransientJobError as exc:
        raise task.retry(exc=exc, countdown=10 * 2**task.request.retries) from exc


def create_worker_app(settings: Settings | None = None) -> WorkerApp:
    app = WorkerApp(settings or get_settings())

    @app.task(name=TRAIN_TASK, **RETRY_OPTIONS)
    def train(self: Task, job_id: str) -> str:
        # torch loads when a training runs, not when the worker starts.
        from shared.services.training import run_training

        return _run_with_retries(self, job_id, run_training)

    @app.task(name=PREDICT_BULK_TASK, **RETRY_OPTIONS)
    def predict_bulk(self: Task, job_id: str) -> str:
        return _run_with_retries(self, job_id, run_bulk)

    # Signals are process-wide: each handler acts for its own app only.
    @worker_ready.connect(weak=False)
    def _start_sweeper(sender: object = None, **_: object) -> None:
        """Once consuming: send due outbox messages, re-queue jobs a dead worker left."""
        if getattr(sender, "app", None) is app:
            app._sweeper_stop = start_sweeper(app.services)

    @worker_shutdown.connect(weak=False)
    def _stop_sweeper(sender: object = None, **_: object) -> None:
        if app._sweeper_stop is not None:
            app._sweeper_stop.set()

    return app
