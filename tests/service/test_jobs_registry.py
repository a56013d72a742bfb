"""Job status machine, idempotent result writes, and the registry's promotion rule, on the
real PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from shared.db import Dataset, Job, JobResult, Model, session_scope, utcnow
from shared.errors import Conflict
from shared.services import jobs, registry

pytestmark = pytest.mark.services


@pytest.fixture
def dataset_id(sessions) -> str:
    with session_scope(sessions) as s:
        row = Dataset(
            name="d",
            format="csv",
            object_key="datasets/x/d.csv",
            sentences=1,
            tokens=1,
            labels={},
            warnings=[],
        )
        s.add(row)
        s.flush()
        return row.id


def _register(s, version: str, f1: float, test_key: str = "split:x:seed=42") -> Model:
    return registry.register(
        s,
        version=version,
        job_id=None,
        base_model="tiny",
        labels=["PER"],
        metrics={"f1": f1},
        manifest_key=f"models/{version}/manifest.json",
        manifest_sha256="0" * 64,
        test_data_key=test_key,
    )


def test_promotion_rule() -> None:
    assert registry.beats(0.5, None)  # nothing in production yet
    assert registry.beats(0.81, 0.8)
    assert not registry.beats(0.8, 0.8)  # a tie keeps the model in production
    assert not registry.beats(0.7, 0.8)


def test_promote_archives_previous_and_one_production_only(sessions, svc) -> None:
    with session_scope(sessions) as s:
        s.execute(update(Model).values(stage="archived"))
        _register(s, "r-a", 0.5)
        _register(s, "r-b", 0.6)
        registry.promote(s, "r-a")
    with session_scope(sessions) as s:
        assert registry.production_ref(s).version == "r-a"
        registry.promote(s, "r-b")
    with session_scope(sessions) as s:
        assert s.get(Model, "r-a").stage == "archived"
        assert s.get(Model, "r-b").stage == "production"
        assert registry.promote(s, "r-b").stage == "production"  # promoting twice is a no-op
    # The database itself refuses a second production row.
    with pytest.raises(IntegrityError), session_scope(sessions) as s:
        s.get(Model, "r-a").stage = "production"
        s.flush()


def test_claim_skips_finished_and_live_jobs(sessions, svc, dataset_id: str) -> None:
    with session_scope(sessions) as s:
        job_id = jobs.create_train_job(s, svc.outbox, dataset_id, {}).id
    with session_scope(sessions) as s:
        assert jobs.claim(s, job_id, stale_after=60) is not None
    with session_scope(sessions) as s:
        # Delivered again while the first worker is alive: not run twice.
        assert jobs.claim(s, job_id, stale_after=60) is None
        s.get(Job, job_id).heartbeat_at = utcnow() - timedelta(seconds=120)
    with session_scope(sessions) as s:
        assert jobs.stale_running_jobs(s, 60) == [(job_id, "train")]
        # Its worker died: a new delivery takes it over.
        assert jobs.claim(s, job_id, stale_after=60) is not None
        jobs.finish(s, job_id, "succeeded")
    with session_scope(sessions) as s:
        assert jobs.claim(s, job_id, stale_after=60) is None
        assert jobs.stale_running_jobs(s, 60) == []


def test_cancel_paths(sessions, svc, dataset_id: str) -> None:
    with session_scope(sessions) as s:
        queued = jobs.create_train_job(s, svc.outbox, dataset_id, {})
        running = jobs.create_train_job(s, svc.outbox, dataset_id, {})
        jobs.claim(s, running.id, stale_after=60)
        assert jobs.request_cancel(s, queued.id).status == "cancelled"
        assert jobs.request_cancel(s, running.id).status == "cancelling"
        status = jobs.record_progress(s, running.id, progress=0.5, stage="training")
        assert status == "cancelling"
        assert s.get(Job, running.id).stage == "cancelling"
        with pytest.raises(Conflict):
            jobs.request_cancel(s, queued.id)
    with session_scope(sessions) as s:
        # A cancel that arrives before the worker starts the job ends it at claim time.
        assert jobs.claim(s, running.id, stale_after=0) is None
        assert s.get(Job, running.id).status == "cancelled"


def test_results_are_written_once(sessions, svc) -> None:
    with session_scope(sessions) as s:
        job = jobs.create_predict_job(
            s, svc.outbox, [(f"d{i}", f"text {i}") for i in range(5)], "v"
        )
    first = [
        (i, [{"start": 0, "end": 4, "label": "X", "text": "text", "score": 1.0}]) for i in range(3)
    ]
    with session_scope(sessions) as s:
        jobs.save_results(s, job.id, first)
    with session_scope(sessions) as s:
        jobs.save_results(s, job.id, [(i, []) for i in range(5)])  # a redelivered chunk overlaps
    with session_scope(sessions) as s:
        rows = s.execute(
            select(JobResult.doc_index, JobResult.entities).where(JobResult.job_id == job.id)
        ).all()
        assert sorted(i for i, _ in rows) == [0, 1, 2, 3, 4]
        assert all(ents for i, ents in rows if i < 3)  # the first write stands
        assert jobs.done_doc_indices(s, job.id) == {0, 1, 2, 3, 4}
