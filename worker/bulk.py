"""The bulk prediction job: documents from the job's rows, tagged in length-sorted batches,
results written in chunks keyed by (job, document index) so a restart skips done work."""

from __future__ import annotations

import time

from sqlalchemy import select

from shared import jobs, registry
from shared.db import Job, JobDocument, session_scope
from worker.context import WorkerContext
from worker.tasks import JobCancelled


def run_bulk(ctx: WorkerContext, job_id: str) -> None:
    with session_scope(ctx.sessions) as session:
        job = session.get(Job, job_id)
        assert job is not None  # claimed just before
        version = job.model_version
        model = registry.get_model(session, version) if version else None
        if model is None:
            raise LookupError(f"model {version!r} is not registered")
        model_version, key, sha = model.version, model.manifest_key, model.manifest_sha256
        total = job.document_count
        done = jobs.done_doc_indices(session, job_id)
        todo = [
            (index, text)
            for index, text in session.execute(
                select(JobDocument.doc_index, JobDocument.text).where(JobDocument.job_id == job_id)
            )
            if index not in done
        ]
        jobs.record_progress(
            session, job_id, progress=len(done) / max(total, 1), stage="loading model"
        )

    predictor = ctx.predictor(model_version, key, sha)
    # Similar lengths in one batch waste little padding.
    todo.sort(key=lambda item: len(item[1]))
    chunk = ctx.settings.bulk_chunk_size
    finished = len(done)
    entities_found = 0
    started = time.monotonic()
    for offset in range(0, len(todo), chunk):
        part = todo[offset : offset + chunk]
        predictions = predictor.predict([text for _, text in part])
        entities_found += sum(len(p) for p in predictions)
        finished += len(part)
        elapsed = time.monotonic() - started
        rate = (offset + len(part)) / elapsed if elapsed > 0 else None
        eta = (total - finished) / rate if rate else None
        with session_scope(ctx.sessions) as session:
            jobs.save_results(
                session,
                job_id,
                [(index, ents) for (index, _), ents in zip(part, predictions, strict=True)],
            )
            status = jobs.record_progress(
                session,
                job_id,
                progress=finished / max(total, 1),
                stage="predicting",
                eta_seconds=eta,
            )
        if status != "running":
            raise JobCancelled(f"job {job_id} is {status}")

    with session_scope(ctx.sessions) as session:
        jobs.finish(
            session,
            job_id,
            "succeeded",
            metrics={
                "documents": total,
                "entities": entities_found,
                "seconds": round(time.monotonic() - started, 3),
            },
        )
