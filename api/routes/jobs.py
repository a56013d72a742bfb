"""Training and bulk-prediction jobs: written and committed, then enqueued by task name."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import APIRouter, Query, Request
from kombu.exceptions import OperationalError as KombuOperationalError
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.deps import SessionDep, StateDep
from api.errors import (
    NO_MODEL_DETAIL,
    Conflict,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    Unprocessable,
)
from api.schemas import (
    JobList,
    JobPublic,
    JobStatus,
    JobType,
    PredictJobCreate,
    ResultList,
    TrainJobCreate,
)
from api.state import AppState
from shared import jobs, registry
from shared.db import Dataset, Job, JobDocument, JobResult
from shared.ner import DatasetError, parse_documents
from shared.queue import PREDICT_BULK_TASK, TRAIN_TASK, enqueue

router = APIRouter(prefix="/jobs", tags=["jobs"])
log = logging.getLogger(__name__)


def _get_job(session: Session, job_id: str) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"job {job_id} not found")
    return job


def _commit_and_enqueue(session: Session, state: AppState, task: str, job: Job) -> dict:
    """Commit first, so the worker finds the row; then send the id. A broker that does not
    answer leaves the job failed, with the reason, and the caller a 503."""
    session.commit()
    try:
        enqueue(state.celery, task, job.id)
    except (KombuOperationalError, OSError) as exc:
        log.error("could not enqueue job %s: %s", job.id, exc)
        jobs.finish(session, job.id, "failed", error=f"could not reach the broker: {exc}")
        session.commit()
        raise ServiceUnavailable(
            f"the job queue is not reachable ({exc}); job {job.id} failed"
        ) from exc
    return jobs.job_public(job)


@router.post("/train", status_code=202, response_model=JobPublic)
def create_train_job(body: TrainJobCreate, session: SessionDep, state: StateDep) -> dict:
    """Queue a training on an uploaded dataset; poll GET /jobs/{id}."""
    for field in ("dataset_id", "validation_dataset_id", "test_dataset_id"):
        dataset_id = getattr(body, field)
        if dataset_id is not None and session.get(Dataset, dataset_id) is None:
            raise NotFound(f"dataset {dataset_id} ({field}) not found")
    params = body.model_dump(exclude_none=True, exclude={"dataset_id"})
    job = jobs.create_train_job(session, body.dataset_id, params)
    return _commit_and_enqueue(session, state, TRAIN_TASK, job)


PREDICT_JOB_BODY = {
    "requestBody": {
        "content": {
            "application/json": {"schema": PredictJobCreate.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "model_version": {"type": "string"},
                    },
                    "required": ["file"],
                }
            },
        },
        "required": True,
    }
}


@router.post("/predict", status_code=202, response_model=JobPublic, openapi_extra=PREDICT_JOB_BODY)
async def create_predict_job(request: Request, state: StateDep) -> dict:
    """Queue a bulk prediction: JSON `documents`, or a multipart JSONL `file` of {"id","text"}."""
    documents, version = await _read_predict_body(request, state)
    limits = state.settings
    if len(documents) > limits.max_bulk_documents:
        raise PayloadTooLarge(
            f"{len(documents)} documents; the limit per job is {limits.max_bulk_documents}"
        )
    for i, (_, text) in enumerate(documents):
        if len(text) > limits.max_text_chars:
            raise PayloadTooLarge(
                f"document {i} has {len(text)} characters; the limit is {limits.max_text_chars}"
            )
    # The database work is blocking: done in a worker thread, with its own transaction.
    return await run_in_threadpool(_store_predict_job, state, documents, version)


def _store_predict_job(
    state: AppState, documents: list[tuple[str, str]], version: str | None
) -> dict:
    session = state.sessions()
    try:
        if version is not None:
            if registry.get_model(session, version) is None:
                raise NotFound(f"model {version} not found")
        else:
            production = registry.production_version(session)
            if production is None:
                raise ServiceUnavailable(NO_MODEL_DETAIL)
            version = production[0]
        job = jobs.create_predict_job(session, documents, version)
        return _commit_and_enqueue(session, state, PREDICT_BULK_TASK, job)
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


async def _read_predict_body(
    request: Request, state: AppState
) -> tuple[list[tuple[str, str]], str | None]:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form(max_part_size=state.settings.max_upload_bytes)
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise Unprocessable([{"line": 0, "message": 'multipart body needs a "file" part'}])
        raw = await upload.read()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise Unprocessable([{"line": 0, "message": "the file is not UTF-8 text"}]) from None
        try:
            docs = parse_documents(text.splitlines())
        except DatasetError as exc:
            raise Unprocessable([p.as_dict() for p in exc.problems]) from None
        if not docs:
            raise Unprocessable([{"line": 1, "message": "the file holds no documents"}])
        version = form.get("model_version")
        return [(d.id, d.text) for d in docs], version if isinstance(version, str) else None
    try:
        payload: Any = json.loads(await request.body())
        body = PredictJobCreate.model_validate(payload)
    except json.JSONDecodeError as exc:
        raise Unprocessable(f"the body is not JSON: {exc}") from None
    except ValidationError as exc:
        raise Unprocessable(
            exc.errors(include_url=False, include_context=False, include_input=False)
        ) from None
    pairs = [
        (str(d.id) if d.id is not None else str(i), d.text) for i, d in enumerate(body.documents)
    ]
    return pairs, body.model_version


@router.get("", response_model=JobList)
def list_jobs(
    session: SessionDep,
    type: JobType | None = None,
    status: JobStatus | None = None,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0),
) -> dict:
    """Jobs, newest first, filtered by type and status."""
    items, total = jobs.list_jobs(session, type=type, status=status, limit=limit, offset=offset)
    return {"items": [jobs.job_public(j) for j in items], "total": total}


@router.get("/{job_id}", response_model=JobPublic)
def get_job(job_id: str, session: SessionDep) -> dict:
    """Status, progress (0–1), stage, ETA, metrics, error."""
    return jobs.job_public(_get_job(session, job_id))


@router.post("/{job_id}/cancel", status_code=202, response_model=JobPublic)
def cancel_job(job_id: str, session: SessionDep) -> dict:
    """Ask a job to stop: a queued job is cancelled at once, a running one within seconds."""
    job = session.get(Job, job_id, with_for_update=True)
    if job is None:
        raise NotFound(f"job {job_id} not found")
    try:
        jobs.request_cancel(session, job)
    except jobs.JobFinishedError as exc:
        raise Conflict(str(exc)) from None
    return jobs.job_public(job)


@router.get("/{job_id}/results", response_model=ResultList)
def job_results(
    job_id: str,
    session: SessionDep,
    offset: int = Query(0, ge=0),
    limit: int = Query(100, ge=1, le=1000),
) -> dict:
    """Entities per document of a bulk prediction job, in input order."""
    job = _get_job(session, job_id)
    if job.type != "predict":
        raise Conflict(f"job {job_id} is a {job.type} job; only predict jobs have results")
    total = (
        session.scalar(
            select(func.count()).select_from(JobResult).where(JobResult.job_id == job_id)
        )
        or 0
    )
    rows = session.execute(
        select(JobResult.doc_index, JobDocument.document_id, JobResult.entities)
        .join(
            JobDocument,
            (JobDocument.job_id == JobResult.job_id)
            & (JobDocument.doc_index == JobResult.doc_index),
        )
        .where(JobResult.job_id == job_id)
        .order_by(JobResult.doc_index)
        .limit(limit)
        .offset(offset)
    )
    items = [{"index": i, "document_id": d, "entities": e} for i, d, e in rows]
    return {"items": items, "total": total}
