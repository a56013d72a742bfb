"""Enqueue after commit, guaranteed in one place: a transactional outbox.

`Outbox.add(session, task, job_id)` writes the intent to send a job's message in the
caller's transaction. When that transaction commits, a listener on the session factory
sends the message (ids only, by task name) and marks the intent sent; nothing is sent
for a transaction that rolls back, and no route or service function has to remember to
send. A process that dies between commit and send, a broker that is down, or one that
lost its messages leaves an intent that `sweep` (run by every worker, periodically) sends
again: at once when it was never sent, with a growing backoff while the job stays queued.
A duplicate message is harmless: the task's claim skips a job that runs or has ended.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import Celery
from kombu.exceptions import KombuError
from redis.exceptions import RedisError
from sqlalchemy import event, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from shared.db import Job, OutboxMessage, session_scope, utcnow
from shared.queue import send_task
from shared.settings import Settings
from shared.states import ACTIVE_STATUSES, FINAL_STATUSES, JobStatus

log = logging.getLogger(__name__)
PENDING_KEY = "ner_outbox_pending"
# What a broker that is down looks like through kombu and redis-py.
BROKER_ERRORS = (KombuError, RedisError, OSError)


class Outbox:
    def __init__(self, celery: Celery, sessions: sessionmaker[Session], settings: Settings):
        self.celery = celery
        self.sessions = sessions
        self.settings = settings

    # -- writing intents ---------------------------------------------------------------

    def add(self, session: Session, task: str, job_id: str) -> None:
        """Record (or renew) the intent to send `task(job_id)` once `session` commits."""
        grace = utcnow() + timedelta(seconds=self.settings.outbox_grace_seconds)
        row = session.get(OutboxMessage, job_id, with_for_update=True)
        if row is None:
            session.add(OutboxMessage(job_id=job_id, task=task, next_attempt_at=grace))
        else:
            row.task, row.sent_at, row.next_attempt_at = task, None, grace
        session.flush()
        session.info.setdefault(PENDING_KEY, []).append(job_id)

    # -- sending after commit ----------------------------------------------------------

    def install(self) -> None:
        """Send each committed session's intents after its commit (this factory only)."""
        event.listen(self.sessions, "after_commit", self._after_commit)
        event.listen(self.sessions, "after_soft_rollback", self._after_rollback)

    def _after_commit(self, session: Session) -> None:
        job_ids = session.info.pop(PENDING_KEY, [])
        if job_ids:
            self.send(job_ids)

    @staticmethod
    def _after_rollback(session: Session, _previous: object) -> None:
        session.info.pop(PENDING_KEY, None)

    def send(self, job_ids: list[str]) -> int:
        """Send the intents of these jobs now and mark them sent; returns how many went.

        Never raises for a broker or database that is down: what is not marked sent is the
        sweeper's to send again."""
        sent = 0
        for job_id in job_ids:
            try:
                with session_scope(self.sessions) as session:
                    row = session.get(OutboxMessage, job_id, with_for_update=True)
                    if row is None:
                        continue
                    # Sent inside the row lock, so two senders never send one intent twice.
                    send_task(self.celery, row.task, job_id)
                    self._mark_sent(row)
                sent += 1
            except BROKER_ERRORS as exc:
                log.warning("job %s: message not sent yet (%s); the sweeper retries", job_id, exc)
            except SQLAlchemyError as exc:
                # The database went away between the send and marking it sent: the sweeper
                # sends it again, and the task's claim makes the duplicate harmless.
                log.warning("job %s: not marked sent (%s); the sweeper retries", job_id, exc)
        return sent

    def _mark_sent(self, row: OutboxMessage) -> None:
        now = utcnow()
        row.send_count += 1
        row.sent_at = now
        backoff = self.settings.outbox_resend_seconds * 2 ** min(row.send_count - 1, 6)
        row.next_attempt_at = now + timedelta(seconds=backoff)

    # -- the sweeper ---------------------------------------------------------------------

    def sweep(self, limit: int = 100) -> list[str]:
        """Send what is due: intents never sent (after their grace period), and jobs still
        queued, or still without a live worker, long after their message went out (a broker
        may have lost it)."""
        now = utcnow()
        stale_cutoff = now - timedelta(seconds=self.settings.stale_job_seconds)
        with session_scope(self.sessions) as session:
            due = list(
                session.scalars(
                    select(OutboxMessage.job_id)
                    .join(Job, Job.id == OutboxMessage.job_id)
                    .where(
                        OutboxMessage.next_attempt_at <= now,
                        Job.status.not_in(FINAL_STATUSES),
                        or_(
                            OutboxMessage.sent_at.is_(None),
                            Job.status == JobStatus.queued,
                            # Re-sent after its worker died, and still nobody took it up.
                            Job.status.in_(ACTIVE_STATUSES)
                            & ((Job.heartbeat_at < stale_cutoff) | Job.heartbeat_at.is_(None)),
                        ),
                    )
                    .order_by(OutboxMessage.next_attempt_at)
                    .limit(limit)
                )
            )
        if due:
            log.info("outbox: sending %d due message(s) again", len(due))
        self.send(due)
        return due
