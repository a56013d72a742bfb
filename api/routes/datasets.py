"""Labelled datasets: validated with the core's readers, stored in the object store."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, UploadFile
from sqlalchemy import func, select

from api.deps import SessionDep, StateDep
from api.errors import NotFound, PayloadTooLarge, Unprocessable
from api.schemas import DatasetList, DatasetPublic
from shared.db import Dataset, new_id
from shared.ner import DatasetError, read_dataset

router = APIRouter(prefix="/datasets", tags=["datasets"])


def dataset_public(row: Dataset) -> dict:
    return {
        "id": row.id,
        "name": row.name,
        "format": row.format,
        "sentences": row.sentences,
        "tokens": row.tokens,
        "labels": row.labels,
        "warnings": row.warnings,
        "created_at": row.created_at,
    }


def safe_filename(name: str) -> str:
    base = Path(name or "upload").name
    return re.sub(r"[^A-Za-z0-9._-]", "_", base)[:100] or "upload"


def save_upload(upload: UploadFile, dest: Path, limit: int) -> None:
    """Copy the upload to `dest`, refusing it (413) once it passes `limit` bytes."""
    size = 0
    with open(dest, "wb") as out:
        while block := upload.file.read(1 << 20):
            size += len(block)
            if size > limit:
                raise PayloadTooLarge(f"the upload is over the limit of {limit} bytes")
            out.write(block)


@router.post(
    "",
    status_code=201,
    response_model=DatasetPublic,
    responses={413: {"description": "upload too large"}, 422: {"description": "invalid file"}},
)
def upload_dataset(
    session: SessionDep,
    state: StateDep,
    file: Annotated[UploadFile, File(description="CSV, CoNLL or JSONL (CONTRACT §1)")],
    name: Annotated[str | None, Form()] = None,
    skip_invalid: Annotated[bool, Form(description="leave invalid sentences out")] = False,
) -> dict:
    """Validate a labelled file and store it; answers its statistics."""
    filename = safe_filename(file.filename or "upload")
    with tempfile.TemporaryDirectory(prefix="ner-upload-") as tmp:
        local = Path(tmp) / filename
        save_upload(file, local, state.settings.max_upload_bytes)
        try:
            dataset = read_dataset(local, filename=filename, skip_invalid=skip_invalid)
        except DatasetError as exc:
            raise Unprocessable([p.as_dict() for p in exc.problems]) from None
        stats: dict[str, Any] = dataset.stats()
        row = Dataset(
            id=new_id(),
            name=(name or file.filename or filename)[:255],
            format=dataset.format,
            sentences=int(stats["sentences"]),
            tokens=int(stats["tokens"]),
            labels=dict(stats["labels"]),
            warnings=list(dataset.warnings),
            skip_invalid=skip_invalid,
        )
        row.object_key = f"datasets/{row.id}/{filename}"
        state.store.put_file(row.object_key, local)
    session.add(row)
    session.flush()
    return dataset_public(row)


@router.get("", response_model=DatasetList)
def list_datasets(
    session: SessionDep,
    limit: int = Query(100, ge=1, le=500),
    offset: int = Query(0, ge=0),
) -> dict:
    """Uploaded datasets, newest first."""
    total = session.scalar(select(func.count()).select_from(Dataset)) or 0
    rows = session.scalars(
        select(Dataset).order_by(Dataset.created_at.desc()).limit(limit).offset(offset)
    ).all()
    return {"items": [dataset_public(r) for r in rows], "total": total}


@router.get("/{dataset_id}", response_model=DatasetPublic)
def get_dataset(dataset_id: str, session: SessionDep) -> dict:
    """One dataset's statistics."""
    row = session.get(Dataset, dataset_id)
    if row is None:
        raise NotFound(f"dataset {dataset_id} not found")
    return dataset_public(row)
