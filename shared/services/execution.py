"""Running one job: claim it, keep its heartbeat, run its body, and leave its row in a final
state whatever happens. The worker's Celery tasks are thin callers of `run_job`.

Delivery is at least once (acks_late, reject_on_worker_lost), so every run first claims its
job: a finished job, or one another live worker holds, is skipped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from shared.db import session_scope
from shared.services import jobs
from shared.services.context import Services
from shared.states import JobStatus

log = logging.getLogger(__name__)

JobBody = Callable[[Services, str], None]


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


def run_job(services: Services, job_id: str, body: JobBody, *, can_retry: bool = False) -> str:
    """Claim the job, run `body`, and leave the row in a final state whatever happens.

    With `can_retry`, a transient error releases the job (so the retried task may claim it
    at once) and raises TransientJobError for the task to retry; otherwise it fails the job.
    """
    ctx = services
    with session_scope(ctx.sessions) as session:
        job = jobs.claim(session, job_id, ctx.settings.stale_job_seconds)
    if job is None:
        log.info("job %s: nothing to do (finished, cancelled or running elsewhere)", job_id)
        return "skipped"
    try:
        with Heartbeat(ctx, job_id):
            body(ctx, job_id)
    except JobCancelled:
        _finish(ctx, job_id, JobStatus.cancelled)
        return "cancelled"
    except Exception as exc:
        if can_retry and is_transient(exc):
            log.warning("job %s: %s; retrying", job_id, readable(exc))
            _release(ctx, job_id)
            raise TransientJobError(readable(exc)) from exc
        # The one place a job's failure is recorded, so the row never stays `running`;
        # re-raised so Celery logs the traceback. (A worker that is killed or shut down
        # mid-job records nothing: recovery re-queues the job once its heartbeat is stale.)
        _finish(ctx, job_id, JobStatus.failed, error=readable(exc))
        raise
    return "done"


class Heartbeat:
    """Keeps the job's heartbeat fresh from a side thread while the job runs, including
    phases with no progress callback (evaluation, upload), so no other worker takes a
    long but live job for an orphan. It dies with the process, which is the point."""

    def __init__(self, ctx: Services, job_id: str) -> None:
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


def _release(ctx: Services, job_id: str) -> None:
    """Best effort: clear the heartbeat so the retry claims the job without waiting for it
    to go stale (if the database is still away, it goes stale and that works too)."""
    try:
        with session_scope(ctx.sessions) as session:
            jobs.release(session, job_id)
    except SQLAlchemyError as exc:
        log.warning("job %s: could not release: %s", job_id, exc)


def _finish(ctx: Services, job_id: str, status: JobStatus, error: str | None = None) -> None:
    with session_scope(ctx.sessions) as session:
        jobs.finish(session, job_id, status, error=error)


def readable(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
