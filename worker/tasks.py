"""Celery tasks: thin wrappers that run one job by id and record how it ended.

Delivery is at least once (acks_late, reject_on_worker_lost), so every task first claims
its job: a finished job, or one another live worker holds, is skipped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError
from celery import Task
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from shared import jobs
from shared.db import session_scope
from shared.queue import PREDICT_BULK_TASK, TRAIN_TASK
from worker.app import celery_app
from worker.context import WorkerContext, get_context

log = logging.getLogger(__name__)


class JobCancelled(Exception):
    """Raised inside a job's loop when its row says `cancelling`."""


class TransientJobError(Exception):
    """The job hit an outside server that went away (database, object store); retried."""


# Errors worth a retry: the connection to a server dropped or could not be made. Anything
# else (bad data, a bug) fails the job at once.
def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError):
        return bool(exc.connection_invalidated)
    return isinstance(exc, EndpointConnectionError | ConnectTimeoutError | ConnectionError)


def run_job(
    job_id: str, body: Callable[[WorkerContext, str], None], *, can_retry: bool = False
) -> str:
    """Claim the job, run `body`, and leave the row in a final state whatever happens.

    With `can_retry`, a transient error releases the job (so the retried task may claim it
    at once) and raises TransientJobError for the task to retry; otherwise it fails the job.
    """
    ctx = get_context()
    with session_scope(ctx.sessions) as session:
        job = jobs.claim(session, job_id, ctx.settings.stale_job_seconds)
    if job is None:
        log.info("job %s: nothing to do (finished, cancelled or running elsewhere)", job_id)
        return "skipped"
    try:
        with Heartbeat(ctx, job_id):
            body(ctx, job_id)
    except JobCancelled:
        _finish(ctx, job_id, "cancelled")
        return "cancelled"
    except Exception as exc:
        if can_retry and is_transient(exc):
            log.warning("job %s: %s; retrying", job_id, _readable(exc))
            _release(ctx, job_id)
            raise TransientJobError(_readable(exc)) from exc
        # The one place a job's failure is recorded, so the row never stays `running`;
        # re-raised so Celery logs the traceback. (A worker that is killed or shut down
        # mid-job records nothing: recovery re-queues the job once its heartbeat is stale.)
        _finish(ctx, job_id, "failed", error=_readable(exc))
        raise
    return "done"


class Heartbeat:
    """Keeps the job's heartbeat fresh from a side thread while the job runs, including
    phases with no progress callback (evaluation, upload), so no other worker takes a
    long but live job for an orphan. It dies with the process, which is the point."""

    def __init__(self, ctx: WorkerContext, job_id: str) -> None:
        self.ctx = ctx
        self.job_id = job_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="job-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _beat(self) -> None:
        period = min(
            self.ctx.settings.progress_interval_seconds, self.ctx.settings.stale_job_seconds / 4
        )
        while not self._stop.wait(period):
            try:
                with session_scope(self.ctx.sessions) as session:
                    jobs.touch(session, self.job_id)
            except SQLAlchemyError as exc:
                log.warning("job %s: heartbeat not written: %s", self.job_id, exc)


def _release(ctx: WorkerContext, job_id: str) -> None:
    """Best effort: clear the heartbeat so the retry claims the job without waiting for it
    to go stale (if the database is still away, it goes stale and that works too)."""
    try:
        with session_scope(ctx.sessions) as session:
            jobs.release(session, job_id)
    except SQLAlchemyError as exc:
        log.warning("job %s: could not release: %s", job_id, exc)


def _finish(ctx: WorkerContext, job_id: str, status: str, error: str | None = None) -> None:
    with session_scope(ctx.sessions) as session:
        jobs.finish(session, job_id, status, error=error)


def _readable(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# Retries: only for TransientJobError, with growing pauses; the last try fails the job.
RETRY_OPTIONS = {"bind": True, "ignore_result": True, "max_retries": 3}


def _run_with_retries(task: Task, job_id: str, body: Callable[[WorkerContext, str], None]) -> str:
    last_try = task.request.retries >= (task.max_retries or 0)
    try:
        return run_job(job_id, body, can_retry=not last_try)
    except TransientJobError as exc:
        raise task.retry(exc=exc, countdown=10 * 2**task.request.retries) from exc


@celery_app.task(name=TRAIN_TASK, **RETRY_OPTIONS)
def train(self: Task, job_id: str) -> str:
    from worker.training import run_training  # torch loads when a task runs, not at import

    return _run_with_retries(self, job_id, run_training)


@celery_app.task(name=PREDICT_BULK_TASK, **RETRY_OPTIONS)
def predict_bulk(self: Task, job_id: str) -> str:
    from worker.bulk import run_bulk

    return _run_with_retries(self, job_id, run_bulk)
