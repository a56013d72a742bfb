"""Job rows: creation, the status machine, progress, and their public JSON shape.

Status machine: queued → running → succeeded | failed | cancelled; a cancel request turns
queued into cancelled at once and running into cancelling, which the worker's loop turns
into cancelled. Inner functions only flush; the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from shared.db import FINISHED_STATUSES, Job, JobDocument, JobResult, utcnow


class JobFinishedError(Exception):
    """The job already ended; it cannot be cancelled."""


def job_public(job: Job) -> dict[str, Any]:
    metrics = dict(job.metrics) if job.metrics else None
    # The training curves (worker/training.py) ride in the metrics column; they are shown
    # as the job's own "history" field.
    history = metrics.pop("history", None) if metrics else None
    out: dict[str, Any] = {
        "id": job.id,
        "type": job.type,
        "status": job.status,
        "progress": round(job.progress, 4),
        "stage": job.stage,
        "created_at": job.created_at,
    }
    optional = {
        "eta_seconds": job.eta_seconds,
        "metrics": metrics,
        "model_version": job.model_version,
        "error": job.error,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "dataset_id": job.dataset_id,
    }
    out.update({k: v for k, v in optional.items() if v is not None})
    out["params"] = job.params or {}
    out["history"] = history
    if job.type == "predict":
        out["documents"] = job.document_count
    return out


def create_train_job(session: Session, dataset_id: str, params: dict[str, Any]) -> Job:
    job = Job(type="train", status="queued", stage="queued", dataset_id=dataset_id, params=params)
    session.add(job)
    session.flush()
    return job


def create_predict_job(
    session: Session, documents: Iterable[tuple[str, str]], model_version: str
) -> Job:
    job = Job(type="predict", status="queued", stage="queued", model_version=model_version)
    session.add(job)
    session.flush()
    count = 0
    rows = []
    for index, (doc_id, text) in enumerate(documents):
        rows.append({"job_id": job.id, "doc_index": index, "document_id": doc_id, "text": text})
        count += 1
    if rows:
        session.execute(insert(JobDocument), rows)
    job.document_count = count
    job.params = {"documents": count}
    session.flush()
    return job


def request_cancel(session: Session, job: Job) -> Job:
    if job.status in FINISHED_STATUSES:
        raise JobFinishedError(f"job {job.id} already {job.status}; nothing to cancel")
    if job.status == "queued":
        # Never started: the worker skips a cancelled job when its message arrives.
        _finish(job, "cancelled", stage="cancelled")
    elif job.status == "running":
        job.status = "cancelling"
        job.stage = "cancelling"
    session.flush()
    return job


def list_jobs(
    session: Session, *, type: str | None, status: str | None, limit: int, offset: int
) -> tuple[list[Job], int]:
    query = select(Job)
    if type:
        query = query.where(Job.type == type)
    if status:
        query = query.where(Job.status == status)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = session.scalars(
        query.order_by(Job.created_at.desc(), Job.id).limit(limit).offset(offset)
    ).all()
    return list(items), total


def count_by_status(session: Session) -> dict[tuple[str, str], int]:
    rows = session.execute(
        select(Job.type, Job.status, func.count()).group_by(Job.type, Job.status)
    )
    return {(t, s): n for t, s, n in rows}


# -- used by the worker --------------------------------------------------------------------


def claim(session: Session, job_id: str, stale_after: float) -> Job | None:
    """Mark the job running for this delivery, or return None when it must not run.

    Skipped: unknown ids, finished jobs (a redelivered task), and jobs another live worker
    is running (fresh heartbeat). A cancel requested before the start ends it here.
    """
    job = session.scalars(select(Job).where(Job.id == job_id).with_for_update()).first()
    if job is None or job.status in FINISHED_STATUSES:
        return None
    if job.status == "cancelling":
        _finish(job, "cancelled", stage="cancelled")
        return None
    now = utcnow()
    alive = job.heartbeat_at is not None and now - _aware(job.heartbeat_at) < timedelta(
        seconds=stale_after
    )
    if job.status == "running" and alive:
        return None
    job.status = "running"
    job.stage = "starting"
    job.error = None
    job.started_at = job.started_at or now
    job.heartbeat_at = now
    session.flush()
    return job


def record_progress(
    session: Session,
    job_id: str,
    *,
    progress: float,
    stage: str,
    eta_seconds: float | None = None,
    metrics: dict[str, Any] | None = None,
) -> str:
    """Write progress and heartbeat; return the job's status (so loops see a cancel)."""
    values: dict[str, Any] = {
        "progress": max(0.0, min(1.0, progress)),
        "eta_seconds": eta_seconds,
        "heartbeat_at": utcnow(),
    }
    if metrics is not None:
        values["metrics"] = metrics
    session.execute(
        update(Job).where(Job.id == job_id, Job.status == "running").values(stage=stage, **values)
    )
    # A cancelling job keeps its stage: the user sees "cancelling" until the loop stops.
    session.execute(update(Job).where(Job.id == job_id, Job.status != "running").values(**values))
    return session.scalar(select(Job.status).where(Job.id == job_id)) or "failed"


def touch(session: Session, job_id: str) -> None:
    """Refresh the heartbeat of a job this worker is running."""
    session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_(("running", "cancelling")))
        .values(heartbeat_at=utcnow())
    )


def release(session: Session, job_id: str) -> None:
    """Clear the heartbeat of a running job this worker gives up on, for a retry to claim."""
    session.execute(
        update(Job).where(Job.id == job_id, Job.status == "running").values(heartbeat_at=None)
    )


def current_status(session: Session, job_id: str) -> str:
    return session.scalar(select(Job.status).where(Job.id == job_id)) or "failed"


def finish(
    session: Session,
    job_id: str,
    status: str,
    *,
    error: str | None = None,
    metrics: dict[str, Any] | None = None,
    model_version: str | None = None,
) -> None:
    job = session.get(Job, job_id, with_for_update=True)
    if job is None:
        return
    _finish(job, status, stage=status, error=error)
    if metrics is not None:
        job.metrics = metrics
    if model_version is not None:
        job.model_version = model_version
    if status == "succeeded":
        job.progress = 1.0
    session.flush()


def _finish(job: Job, status: str, *, stage: str, error: str | None = None) -> None:
    job.status = status
    job.stage = stage
    job.eta_seconds = None
    job.finished_at = utcnow()
    if error is not None:
        job.error = error


def stale_running_jobs(session: Session, stale_after: float) -> list[tuple[str, str]]:
    """(id, type) of running jobs whose worker stopped sending heartbeats."""
    cutoff = utcnow() - timedelta(seconds=stale_after)
    rows = session.execute(
        select(Job.id, Job.type).where(
            Job.status.in_(("running", "cancelling")), Job.heartbeat_at < cutoff
        )
    )
    return [(job_id, job_type) for job_id, job_type in rows]


def done_doc_indices(session: Session, job_id: str) -> set[int]:
    return set(session.scalars(select(JobResult.doc_index).where(JobResult.job_id == job_id)))


def _aware(value: datetime) -> datetime:
    # SQLite returns naive datetimes for timezone-aware columns; they were written in UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def save_results(
    session: Session, job_id: str, results: list[tuple[int, list[dict[str, Any]]]]
) -> None:
    """Insert result rows; a row that already exists (a redelivered chunk) is left alone."""
    if not results:
        return
    rows = [{"job_id": job_id, "doc_index": i, "entities": ents} for i, ents in results]
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        stmt: Any = postgresql.insert(JobResult).values(rows)
    elif dialect == "sqlite":
        stmt = sqlite.insert(JobResult).values(rows)
    else:
        raise NotImplementedError(f"database {dialect!r} is not supported")
    stmt = stmt.on_conflict_do_nothing(index_elements=["job_id", "doc_index"])
    session.execute(stmt)
