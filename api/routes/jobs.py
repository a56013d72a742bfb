"""Training and bulk-prediction jobs: the job row and its outbox intent commit together;
the message is sent after the commit (shared/services/outbox.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Query, UploadFile

from api.deps import ServicesDep, SessionDep
from api.routing import CONTENT_TYPE_KEY, ContentTypeRoute
from api.schemas import (
    RESOURCE_ERRORS,
    IdForm,
    IdPath,
    JobList,
    JobPublic,
    PredictJobCreate,
    ResultList,
    TrainJobCreate,
    error,
)
from shared.db import Job
from shared.services import bulk, jobs
from shared.services.base_models import resolve_base_model
from shared.services.datasets import read_bounded
from shared.states import JobStatus, JobType

router = APIRouter(
    prefix="/jobs", tags=["jobs"], route_class=ContentTypeRoute, responses=RESOURCE_ERRORS
)


@router.post("/train", status_code=202, response_model=JobPublic)
def create_train_job(body: TrainJobCreate, session: SessionDep, services: ServicesDep) -> Job:
    """Queue a training on an uploaded dataset; poll GET /jobs/{id}."""
    base_model = resolve_base_model(body.base_model, services.settings)
    jobs.check_datasets(
        session,
        dataset_id=body.dataset_id,
        validation_dataset_id=body.validation_dataset_id,
        test_dataset_id=body.test_dataset_id,
    )
    # Stored resolved: the job shows every parameter it runs with, defaults included.
    params = body.model_dump(exclude={"dataset_id"}) | {"base_model": base_model}
    return jobs.create_train_job(session, services.outbox, body.dataset_id, params)


# Two forms of one operation, chosen by Content-Type: a multipart JSONL file (first, so it is
# tried first), and JSON for anything else.
@router.post(
    "/predict",
    status_code=202,
    response_model=JobPublic,
    openapi_extra={CONTENT_TYPE_KEY: "multipart/form-data"},
    responses={413: error("too many or too long documents")},
)
def create_predict_job_from_file(
    session: SessionDep,
    services: ServicesDep,
    file: Annotated[UploadFile, File(description='JSONL: one {"id", "text"} object per line')],
    model_version: IdForm = None,
) -> Job:
    """Queue a bulk prediction of a JSONL file's documents; poll GET /jobs/{id}."""
    raw = read_bounded(file.file, services.settings.max_upload_bytes)
    documents = bulk.parse_jsonl_documents(raw)
    return bulk.submit_bulk_job(
        session, services.outbox, services.settings, documents, model_version
    )


@router.post(
    "/predict",
    status_code=202,
    response_model=JobPublic,
    responses={413: error("too many or too long documents")},
)
def create_predict_job(body: PredictJobCreate, session: SessionDep, services: ServicesDep) -> Job:
    """Queue a bulk prediction of JSON `documents` (or send a multipart JSONL `file`)."""
    documents = [
        (str(d.id) if d.id is not None else str(i), d.text) for i, d in enumerate(body.documents)
    ]
    return bulk.submit_bulk_job(
        session, services.outbox, services.settings, documents, body.model_version
    )


@router.get("", response_model=JobList)
def list_jobs(
    session: SessionDep,
    type: JobType | None = None,
    status: JobStatus | None = None,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=1_000_000_000),
) -> dict:
    """Jobs, newest first, filtered by type and status."""
    items, total = jobs.list_jobs(session, type=type, status=status, limit=limit, offset=offset)
    return {"items": items, "total": total}


@router.get("/{job_id}", response_model=JobPublic)
def get_job(job_id: IdPath, session: SessionDep) -> Job:
    """Status, progress (0–1), stage, ETA, metrics, training curves, error."""
    return jobs.get_job(session, job_id)


@router.post("/{job_id}/cancel", status_code=202, response_model=JobPublic)
def cancel_job(job_id: IdPath, session: SessionDep) -> Job:
    """Ask a job to stop: a queued job is cancelled at once, a running one within seconds."""
    return jobs.request_cancel(session, job_id)


@router.get("/{job_id}/results", response_model=ResultList)
def job_results(
    job_id: IdPath,
    session: SessionDep,
    offset: int = Query(0, ge=0, le=1_000_000_000),
    limit: int = Query(100, ge=1, le=1000),
) -> dict:
    """Entities per document of a bulk prediction job, in input order."""
    items, total = jobs.results_page(session, job_id, offset=offset, limit=limit)
    return {"items": items, "total": total}
