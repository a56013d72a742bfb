"""Labelled datasets: validated with the core's readers, stored in the object store."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Query, UploadFile

from api.deps import ServicesDep, SessionDep
from api.schemas import RESOURCE_ERRORS, DatasetList, DatasetPublic, IdPath, NameForm, error
from shared.db import Dataset
from shared.services import datasets

router = APIRouter(prefix="/datasets", tags=["datasets"], responses=RESOURCE_ERRORS)


@router.post(
    "",
    status_code=201,
    response_model=DatasetPublic,
    responses={413: error("upload too large"), 422: error("invalid file or form")},
)
def upload_dataset(
    session: SessionDep,
    services: ServicesDep,
    file: Annotated[UploadFile, File(description="CSV, CoNLL or JSONL (CONTRACT §1)")],
    name: NameForm = None,
    skip_invalid: Annotated[bool, Form(description="leave invalid sentences out")] = False,
) -> Dataset:
    """Validate a labelled file and store it; answers its statistics."""
    return datasets.create_dataset(
        session,
        services.store,
        file.file,
        filename=file.filename,
        name=name,
        skip_invalid=skip_invalid,
        max_bytes=services.settings.max_upload_bytes,
        max_unpacked_bytes=services.settings.max_unpacked_bytes,
    )


@router.get("", response_model=DatasetList)
def list_datasets(
    session: SessionDep,
    limit: int = Query(100, ge=1, le=500),
    offset: int = Query(0, ge=0, le=1_000_000_000),
) -> dict:
    """Uploaded datasets, newest first."""
    items, total = datasets.list_datasets(session, limit=limit, offset=offset)
    return {"items": items, "total": total}


@router.get("/{dataset_id}", response_model=DatasetPublic)
def get_dataset(dataset_id: IdPath, session: SessionDep) -> Dataset:
    """One dataset's statistics."""
    return datasets.get_dataset(session, dataset_id)
