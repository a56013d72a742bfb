"""The bulk prediction job: submitted with its documents (from JSON or a JSONL file), then
run by a worker: documents from the job's rows, tagged in length-sorted batches, results
written in chunks keyed by (job, document index) so a restart skips done work."""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.db import Job, JobDocument, session_scope
from shared.errors import NO_MODEL_DETAIL, InvalidInput, TooLarge, Unavailable
from shared.ner import DatasetError, parse_documents
from shared.services import jobs, registry
from shared.services.execution import FINAL_WRITE_PATIENCE, JobRun
from shared.services.models import ModelRef
from shared.services.outbox import Outbox
from shared.services.text import text_problem
from shared.settings import Settings
from shared.states import JobStatus

# The document_id column's width.
MAX_DOCUMENT_ID = 255


def parse_jsonl_documents(raw: bytes) -> list[tuple[str, str]]:
    """(id, text) pairs from a JSONL upload of {"id", "text"} lines; InvalidInput with the
    line of every problem."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            [{"line": 0, "message": f"the file is not UTF-8 text (byte {exc.start})"}]
        ) from None
    try:
        docs = parse_documents(text.split("\n"))
    except DatasetError as exc:
        raise InvalidInput([p.as_dict() for p in exc.problems]) from None
    if not docs:
        raise InvalidInput([{"line": 1, "message": "the file holds no documents"}])
    return [(d.id, d.text) for d in docs]


def submit_bulk_job(
    session: Session,
    outbox: Outbox,
    settings: Settings,
    documents: Sequence[tuple[str, str]],
    model_version: str | None,
) -> Job:
    """A queued bulk job over `documents` with the named model (default: production)."""
    if len(documents) > settings.max_bulk_documents:
        raise TooLarge(
            f"{len(documents)} documents; the limit per job is {settings.max_bulk_documents}"
        )
    for i, (doc_id, text) in enumerate(documents):
        if len(text) > settings.max_text_chars:
            raise TooLarge(
                f"document {i} has {len(text)} characters; the limit is {settings.max_text_chars}"
            )
        if len(doc_id) > MAX_DOCUMENT_ID:
            raise InvalidInput(
                f"document {i}: its id has {len(doc_id)} characters; at most {MAX_DOCUMENT_ID}"
            )
        # A JSONL file is not checked by the API's schema: the same rule, here.
        for what, value in (("text", text), ("id", doc_id)):
            problem = text_problem(value, stored=True)
            if problem:
                raise InvalidInput(f"document {i}: its {what} {problem}")
    if model_version is not None:
        version = registry.get_model(session, model_version).version
    else:
        production = registry.production_ref(session)
        if production is None:
            raise Unavailable(NO_MODEL_DETAIL, retry_after=60)
        version = production.version
    return jobs.create_predict_job(session, outbox, documents, version)


def run_bulk(run: JobRun) -> None:
    ctx, job_id = run.services, run.job_id
    with session_scope(ctx.sessions) as session:
        job = jobs.get_job(session, job_id)
        if job.model_version is None:
            raise LookupError(f"job {job_id} names no model")
        ref = ModelRef.of(registry.get_model(session, job.model_version))
        total = job.document_count
        done = jobs.done_doc_indices(session, job_id)
        todo = [
            (index, text)
            for index, text in session.execute(
                select(JobDocument.doc_index, JobDocument.text).where(JobDocument.job_id == job_id)
            )
            if index not in done
        ]
    run.stop_if_cancelled(run.progress(progress=len(done) / max(total, 1), stage="loading model"))

    predictor = ctx.models.predictor(ref)
    # Similar lengths in one batch waste little padding.
    todo.sort(key=lambda item: len(item[1]))
    chunk = ctx.settings.bulk_chunk_size
    finished = len(done)
    entities_found = 0
    started = time.monotonic()
    # Each chunk's results are stored while the next chunk is tagged (one write in flight,
    # in order): the model keeps the CPU busy while the database commits. A write that
    # fails, or finds the job cancelled, stops the run before the chunk after.
    with ThreadPoolExecutor(1, thread_name_prefix="bulk-store") as writer:
        pending: Future[JobStatus] | None = None
        for offset in range(0, len(todo), chunk):
            part = todo[offset : offset + chunk]
            predictions = predictor.predict([text for _, text in part])
            entities_found += sum(len(p) for p in predictions)
            finished += len(part)
            elapsed = time.monotonic() - started
            rate = (offset + len(part)) / elapsed if elapsed > 0 else None
            eta = (total - finished) / rate if rate else None
            results = [(index, ents) for (index, _), ents in zip(part, predictions, strict=True)]

            def store(
                session: Session,
                results: list = results,
                eta: float | None = eta,
                progress: float = finished / max(total, 1),
            ) -> JobStatus:
                jobs.save_results(session, job_id, run.attempt, results)
                return jobs.record_progress(
                    session,
                    job_id,
                    run.attempt,
                    progress=progress,
                    stage="predicting",
                    eta_seconds=eta,
                )

            if pending is not None:
                run.stop_if_cancelled(pending.result())
            # Results must not be lost: a database that is briefly away is waited for.
            pending = writer.submit(run.write, store, within=FINAL_WRITE_PATIENCE)
        if pending is not None:
            run.stop_if_cancelled(pending.result())

    metrics = {
        "documents": total,
        "entities": entities_found,
        "seconds": round(time.monotonic() - started, 3),
    }
    run.write(
        lambda s: jobs.finish(s, job_id, JobStatus.succeeded, attempt=run.attempt, metrics=metrics),
        within=FINAL_WRITE_PATIENCE,
    )
