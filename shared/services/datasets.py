"""Labelled datasets: validated with the core's readers (the same code `ner train` uses),
the file kept in the object store under the dataset's id, the statistics in a row."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.db import Dataset, new_id
from shared.errors import InvalidInput, NotFound, TooLarge
from shared.ner import DatasetError, DatasetTooLarge, read_dataset
from shared.ner.formats import DEFAULT_MAX_UNPACKED_BYTES
from shared.services.text import text_problem
from shared.storage import ObjectStore


def safe_filename(name: str | None) -> str:
    """The upload's base name with anything unusual replaced (never a path, never empty)."""
    base = Path(name or "upload").name
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", base)[:100].lstrip(".")
    return cleaned or "upload"


def _display_name(name: str) -> str:
    """A name a database column can hold: a multipart filename can carry a NUL, a lone
    surrogate or control characters."""
    cleaned = "".join(
        c if c.isprintable() and text_problem(c, stored=True) is None else "_" for c in name
    )
    return cleaned[:255] or "upload"


def bounded_blocks(source: BinaryIO, limit: int) -> Iterator[bytes]:
    """`source` in blocks, refusing it (TooLarge) once it passes `limit` bytes."""
    size = 0
    while block := source.read(1 << 20):
        size += len(block)
        if size > limit:
            raise TooLarge(f"the upload is over the limit of {limit} bytes")
        yield block


def copy_bounded(source: BinaryIO, dest: Path, limit: int) -> None:
    with open(dest, "wb") as out:
        for block in bounded_blocks(source, limit):
            out.write(block)


def read_bounded(source: BinaryIO, limit: int) -> bytes:
    return b"".join(bounded_blocks(source, limit))


def create_dataset(
    session: Session,
    store: ObjectStore,
    source: BinaryIO,
    *,
    filename: str | None,
    name: str | None,
    skip_invalid: bool,
    max_bytes: int,
    max_unpacked_bytes: int | None = None,
) -> Dataset:
    """Validate the upload and store it; InvalidInput lists every problem with its line.

    The file goes to the object store before the row is flushed, so a row never exists
    without its file (a store that is down fails the request and leaves nothing)."""
    safe = safe_filename(filename)
    with tempfile.TemporaryDirectory(prefix="ner-upload-") as tmp:
        local = Path(tmp) / safe
        copy_bounded(source, local, max_bytes)
        try:
            dataset = read_dataset(
                local,
                filename=safe,
                skip_invalid=skip_invalid,
                max_unpacked_bytes=max_unpacked_bytes or DEFAULT_MAX_UNPACKED_BYTES,
            )
        except DatasetTooLarge as exc:
            raise TooLarge([p.as_dict() for p in exc.problems]) from None
        except DatasetError as exc:
            raise InvalidInput([p.as_dict() for p in exc.problems]) from None
        stats: dict[str, Any] = dataset.stats()
        row = Dataset(
            id=new_id(),
            name=_display_name(name or filename or safe),
            format=dataset.format,
            sentences=int(stats["sentences"]),
            tokens=int(stats["tokens"]),
            labels=dict(stats["labels"]),
            warnings=list(dataset.warnings),
            skip_invalid=skip_invalid,
        )
        row.object_key = f"datasets/{row.id}/{safe}"
        store.put_file(row.object_key, local)
    session.add(row)
    session.flush()
    return row


def get_dataset(session: Session, dataset_id: str) -> Dataset:
    row = session.get(Dataset, dataset_id)
    if row is None:
        raise NotFound(f"dataset {dataset_id} not found")
    return row


def list_datasets(session: Session, *, limit: int, offset: int) -> tuple[list[Dataset], int]:
    total = session.scalar(select(func.count()).select_from(Dataset)) or 0
    rows = session.scalars(
        select(Dataset).order_by(Dataset.created_at.desc()).limit(limit).offset(offset)
    ).all()
    return list(rows), total
