"""Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from api.deps import SessionDep
from api.metrics import JOBS, exposition
from api.schemas import COMMON_ERRORS
from shared.services import jobs
from shared.states import JobStatus, JobType

router = APIRouter(tags=["monitoring"], responses=COMMON_ERRORS)


@router.get("/metrics", response_class=Response)
def metrics(session: SessionDep) -> Response:
    """Request counts and latencies, jobs by status, /predict batch sizes."""
    counts = jobs.count_by_status(session)
    for job_type in JobType:
        for status in JobStatus:
            JOBS.labels(job_type.value, status.value).set(counts.get((job_type, status), 0))
    return Response(exposition(), media_type=CONTENT_TYPE_LATEST)
