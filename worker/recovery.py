"""Re-queueing jobs whose worker died (SIGKILL, OOM, lost machine).

Such a job stays `running` with a heartbeat that stops moving. Redis would hand its
unacknowledged message out again only after the visibility timeout (hours, since it must
exceed the longest training), so each worker looks for stale heartbeats itself, at start
and then periodically, and sends those jobs again. The tasks' claim step makes a
duplicate harmless.
"""

from __future__ import annotations

import logging
import threading

from celery import Celery
from sqlalchemy.exc import SQLAlchemyError

from shared import jobs
from shared.db import session_scope
from shared.queue import PREDICT_BULK_TASK, TRAIN_TASK, enqueue
from worker.context import WorkerContext

log = logging.getLogger(__name__)
TASK_OF_TYPE = {"train": TRAIN_TASK, "predict": PREDICT_BULK_TASK}


def requeue_stale_jobs(ctx: WorkerContext, app: Celery) -> list[str]:
    with session_scope(ctx.sessions) as session:
        stale = jobs.stale_running_jobs(session, ctx.settings.stale_job_seconds)
    for job_id, job_type in stale:
        log.warning("job %s lost its worker (no heartbeat); queueing it again", job_id)
        enqueue(app, TASK_OF_TYPE[job_type], job_id)
    return [job_id for job_id, _ in stale]


def start_recovery_thread(ctx: WorkerContext, app: Celery) -> threading.Event:
    """Check now and then every half stale period; set the returned event to stop."""
    stop = threading.Event()
    period = max(ctx.settings.stale_job_seconds / 2, 1.0)

    def loop() -> None:
        while True:
            try:
                requeue_stale_jobs(ctx, app)
            except (SQLAlchemyError, OSError) as exc:
                # Database or broker briefly away: try again next period.
                log.warning("stale-job check failed: %s", exc)
            if stop.wait(period):
                return

    threading.Thread(target=loop, name="ner-job-recovery", daemon=True).start()
    return stop
