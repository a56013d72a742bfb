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

from sqlalchemy.exc import SQLAlchemyError

from shared.db import Job, OutboxMessage, session_scope
from shared.queue import TASK_OF_JOB_TYPE
from shared.services import jobs
from shared.services.context import Services

log = logging.getLogger(__name__)


def requeue_stale_jobs(services: Services) -> list[str]:
    """Write a new outbox intent for each job that went stale since its message was last
    sent (a stale job already re-sent is the outbox sweep's to send again, with backoff)."""
    requeued = []
    with session_scope(services.sessions) as session:
        stale = jobs.stale_running_jobs(session, services.settings.stale_job_seconds)
        for job_id, job_type in stale:
            message = session.get(OutboxMessage, job_id)
            job = session.get(Job, job_id)
            assert job is not None
            if (
                message is not None
                and message.sent_at is not None
                and job.heartbeat_at is not None
                and message.sent_at > job.heartbeat_at
            ):
                continue
            if message is not None and message.sent_at is None:
                continue  # an intent not sent yet: the outbox sends it
            log.warning("job %s lost its worker (no heartbeat); queueing it again", job_id)
            services.outbox.add(session, TASK_OF_JOB_TYPE[job_type], job_id)
            requeued.append(job_id)
    return requeued


def sweep_once(services: Services) -> None:
    requeue_stale_jobs(services)
    services.outbox.sweep()


def start_sweeper(services: Services) -> threading.Event:
    """Sweep now and then every `sweep_seconds`; set the returned event to stop."""
    stop = threading.Event()
    period = min(services.settings.sweep_seconds, max(services.settings.stale_job_seconds / 2, 1))

    def loop() -> None:
        while True:
            try:
                sweep_once(services)
            except (SQLAlchemyError, OSError) as exc:
                # Database or broker briefly away: try again next period.
                log.warning("sweep failed: %s", exc)
            if stop.wait(period):
                return

    threading.Thread(target=loop, name="ner-sweeper", daemon=True).start()
    return stop
