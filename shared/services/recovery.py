"""The sweeper every worker runs: sends due outbox messages, and re-queues jobs whose worker
died (SIGKILL, OOM, a lost machine).

Such a job stays `running` with a heartbeat that stops moving. Redis would hand its
unacknowledged message out again only after the visibility timeout (hours, since it must
exceed the longest training), so each worker looks for stale heartbeats itself and writes
a new outbox intent for the job; the outbox sends it after the commit. The tasks' claim step
makes a duplicate harmless.
"""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy.exc import SQLAlchemyError

from shared.db import OutboxMessage, session_scope
from shared.queue import TASK_OF_JOB_TYPE
from shared.services import jobs
from shared.services.context import Services

log = logging.getLogger(__name__)


def requeue_stale_jobs(services: Services) -> list[str]:
    """Write a new outbox intent for each job that went stale since its message was last
    sent (a stale job already re-sent is the outbox sweep's to send again, with backoff)."""
    requeued = []
    with session_scope(services.sessions) as session:
        for job in jobs.stale_running_jobs(session, services.settings.stale_job_seconds):
            message = session.get(OutboxMessage, job.id)
            if message is not None and message.sent_at is None:
                continue  # an intent not sent yet: the outbox sends it
            last_alive = job.heartbeat_at or job.started_at
            sent = message.sent_at if message is not None else None
            if sent is not None and last_alive is not None and sent > last_alive:
                continue  # already re-sent since this attempt went quiet
            log.warning("job %s lost its worker (no heartbeat); queueing it again", job.id)
            services.outbox.add(session, TASK_OF_JOB_TYPE[job.type], job.id)
            requeued.append(job.id)
    return requeued


def start_sweeper(services: Services) -> threading.Event:
    """Sweep now and then every `sweep_seconds`; set the returned event to stop.

    A job is judged stale only after this worker has reached the database for a whole stale
    period: after an outage (when no heartbeat could be written) the live workers get that
    long to beat again before their jobs are taken from them.
    """
    stop = threading.Event()
    settings = services.settings
    period = min(settings.sweep_seconds, max(settings.stale_job_seconds / 2, 1))

    def loop() -> None:
        reachable_since: float | None = None
        while True:
            try:
                services.outbox.sweep()
                now = time.monotonic()
                reachable_since = reachable_since or now
                if now - reachable_since >= settings.stale_job_seconds:
                    requeue_stale_jobs(services)
            except (SQLAlchemyError, OSError) as exc:
                # Database or broker briefly away: try again next period.
                reachable_since = None
                log.warning("sweep failed: %s", exc)
            if stop.wait(period):
                return

    threading.Thread(target=loop, name="ner-sweeper", daemon=True).start()
    return stop
