"""Running one job: claim it (a new, numbered attempt), keep its heartbeat, run its body,
and leave its row in a final state whatever happens. The worker's Celery tasks are thin
callers of `run_job`.

Delivery is at least once (acks_late, reject_on_worker_lost), so every run first claims its
job: a finished job, or one another live worker holds, is skipped. Every write of the run
carries its attempt number (`JobRun`), so a worker that lost its claim (it looked dead and
the job went to another) stops at its next write instead of overwriting the new attempt.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from shared.db import session_scope
from shared.services import jobs
from shared.services.context import Services
from shared.services.jobs import LostClaim
from shared.states import JobStatus

log = logging.getLogger(__name__)
T = TypeVar("T")


class JobCancelled(Exception):
    """Raised inside a job's run when its row says `cancelling`."""


class TransientJobError(Exception):
    """The job hit an outside server that went away (database, object store); retried."""


# Errors worth a retry: the connection to a server dropped or could not be made. Anything
# else (bad data, a bug) fails the job at once.
def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError):
        return isinstance(exc, OperationalError) or bool(exc.connection_invalidated)
    return isinstance(exc, EndpointConnectionError | ConnectTimeoutError | ConnectionError)


@dataclass(frozen=True)
class JobRun:
    """One attempt at a job: what a job's body gets, and the only way it writes to its row."""

    services: Services
    job_id: str
    attempt: int

    def write(self, fn: Callable[[Session], T], *, within: float | None = None) -> T:
        """Run `fn` in a transaction. With `within`, a database that is down is waited for
        (retried with backoff) for up to that many seconds before the error is raised."""
        deadline = time.monotonic() + (within or 0)
        pause = 0.5
        while True:
            try:
                with session_scope(self.services.sessions) as session:
                    return fn(session)
            except SQLAlchemyError as exc:
                if not is_transient(exc) or time.monotonic() + pause > deadline:
                    raise
                log.warning("job %s: database unavailable (%s); retrying", self.job_id, exc)
                time.sleep(pause)
                pause = min(pause * 2, 10.0)

    def progress(self, **values: Any) -> JobStatus:
        """Record progress (jobs.record_progress); the job's status comes back."""
        return self.write(lambda s: jobs.record_progress(s, self.job_id, self.attempt, **values))

    def status(self) -> JobStatus:
        return self.write(lambda s: jobs.current_status(s, self.job_id, self.attempt))

    def stop_if_cancelled(self, status: JobStatus) -> None:
        if status != JobStatus.running:
            raise JobCancelled(f"job {self.job_id} is {status}")


JobBody = Callable[[JobRun], None]
# How long the final writes of a run (results, registration, the end) wait for a database
# that is down, before the run gives up and the task is retried.
FINAL_WRITE_PATIENCE = 120.0


def run_job(services: Services, job_id: str, body: JobBody, *, can_retry: bool = False) -> str:
    """Claim the job, run `body`, and leave the row in a final state whatever happens.

    With `can_retry`, a transient error releases the job (so the retried task may claim it
    at once) and raises TransientJobError for the task to retry; otherwise it fails the job.
    Returns "done", "cancelled", "skipped" or "superseded" (another worker took it over).
    """
    settings = services.settings
    with session_scope(services.sessions) as session:
        claimed = jobs.claim(session, job_id, settings.stale_job_seconds, settings.max_job_attempts)
    if claimed is None:
        log.info("job %s: nothing to do (finished, cancelled or running elsewhere)", job_id)
        return "skipped"
    run = JobRun(services, job_id, claimed.attempt)
    try:
        with Heartbeat(run):
            body(run)
    except LostClaim:
        log.warning("job %s: attempt %d was superseded; stopping", job_id, run.attempt)
        return "superseded"
    except JobCancelled:
        _finish(run, JobStatus.cancelled)
        return "cancelled"
    except Exception as exc:
        if can_retry and is_transient(exc):
            log.warning("job %s: %s; retrying", job_id, readable(exc))
            _release(run)
            raise TransientJobError(readable(exc)) from exc
        # The one place a job's failure is recorded, so the row never stays `running`;
        # re-raised so Celery logs the traceback. (A worker that is killed or shut down
        # mid-job records nothing: the sweeper re-queues the job once its heartbeat is stale.)
        _finish(run, JobStatus.failed, error=readable(exc))
        raise
    return "done"


class Heartbeat:
    """Keeps the job's heartbeat fresh from a side thread while the job runs, including
    phases with no progress callback (evaluation, upload), so no other worker takes a
    long but live job for an orphan. It dies with the process, which is the point."""

    def __init__(self, run: JobRun) -> None:
        self.run = run
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="job-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _beat(self) -> None:
        settings = self.run.services.settings
        period = min(settings.progress_interval_seconds, settings.stale_job_seconds / 4)
        while not self._stop.wait(period):
            try:
                self.run.write(lambda s: jobs.touch(s, self.run.job_id, self.run.attempt))
            except SQLAlchemyError as exc:
                log.warning("job %s: heartbeat not written: %s", self.run.job_id, exc)


def _release(run: JobRun) -> None:
    """Best effort: clear the heartbeat so the retry claims the job without waiting for it
    to go stale (if the database is still away, it goes stale and that works too)."""
    try:
        run.write(lambda s: jobs.release(s, run.job_id, run.attempt))
    except SQLAlchemyError as exc:
        log.warning("job %s: could not release: %s", run.job_id, exc)


def _finish(run: JobRun, status: JobStatus, error: str | None = None) -> None:
    run.write(
        lambda s: jobs.finish(s, run.job_id, status, attempt=run.attempt, error=error),
        within=FINAL_WRITE_PATIENCE,
    )


def readable(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
