"""The worker's task functions called directly (not through Celery's eager mode), on the
real database and S3 server: failure and cancel recording, redelivery, training that
registers and promotes, and bulk prediction that resumes and cancels."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from shared.db import Dataset, Job, JobResult, session_scope
from shared.services import jobs, registry
from shared.services.bulk import run_bulk
from shared.services.context import Services
from shared.services.execution import JobCancelled, JobRun, TransientJobError, run_job
from shared.services.training import run_training
from shared.settings import Settings

pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def ctx(service_settings: Settings, tiny_base_model: Path) -> Iterator[Services]:
    settings = service_settings.model_copy(update={"base_model": str(tiny_base_model)})
    services = Services.from_settings(settings)
    yield services
    services.close()


def _job(ctx: Services, job_id: str) -> Job:
    with session_scope(ctx.sessions) as s:
        return s.get(Job, job_id)


def _stored_dataset(ctx: Services, path: Path, name: str, skip_invalid: bool = False) -> str:
    """A dataset row whose file is in the object store, as POST /datasets leaves it."""
    key = f"datasets/tasks/{path.name}"
    ctx.store.put_file(key, path)
    with session_scope(ctx.sessions) as s:
        row = Dataset(
            name=name,
            format="csv",
            object_key=key,
            sentences=120,
            tokens=0,
            labels={},
            warnings=[],
            skip_invalid=skip_invalid,
        )
        s.add(row)
        s.flush()
        return row.id


@pytest.fixture(scope="module")
def dataset_id(ctx: Services, train_csv: Path) -> str:
    return _stored_dataset(ctx, train_csv, "people")


def _new_train_job(ctx: Services, dataset_id: str, **params) -> str:
    with session_scope(ctx.sessions) as s:
        return jobs.create_train_job(s, ctx.outbox, dataset_id, params).id


def test_exception_leaves_job_failed_with_readable_error(ctx, dataset_id) -> None:
    job_id = _new_train_job(ctx, dataset_id)

    def boom(_run: JobRun) -> None:
        raise ValueError("the data ran away")

    with pytest.raises(ValueError):
        run_job(ctx, job_id, boom)
    job = _job(ctx, job_id)
    assert job.status == "failed"
    assert job.error == "ValueError: the data ran away"
    assert job.finished_at is not None


def test_cancel_and_redelivery(ctx, dataset_id) -> None:
    job_id = _new_train_job(ctx, dataset_id)

    def stop(_run: JobRun) -> None:
        raise JobCancelled

    assert run_job(ctx, job_id, stop) == "cancelled"
    assert _job(ctx, job_id).status == "cancelled"
    calls = []
    assert run_job(ctx, job_id, lambda run: calls.append(run.job_id)) == "skipped"
    assert run_job(ctx, "no-such-job", lambda run: calls.append(run.job_id)) == "skipped"
    assert calls == []


def test_transient_error_releases_the_job_for_a_retry(ctx, dataset_id) -> None:
    job_id = _new_train_job(ctx, dataset_id)
    dropped = OperationalError(
        "SELECT 1", {}, Exception("server closed"), connection_invalidated=True
    )

    def flaky(_run: JobRun) -> None:
        raise dropped

    with pytest.raises(TransientJobError):
        run_job(ctx, job_id, flaky, can_retry=True)
    job = _job(ctx, job_id)
    assert job.status == "running" and job.heartbeat_at is None
    # The retry claims it at once; on the last try the same error fails the job.
    with pytest.raises(OperationalError):
        run_job(ctx, job_id, flaky, can_retry=False)
    assert _job(ctx, job_id).status == "failed"


def test_training_registers_and_promotes(ctx, dataset_id) -> None:
    job_id = _new_train_job(ctx, dataset_id, epochs=5, learning_rate=5e-3)
    assert run_job(ctx, job_id, run_training) == "done"
    job = _job(ctx, job_id)
    assert job.status == "succeeded" and job.progress == 1.0
    with session_scope(ctx.sessions) as s:
        model = registry.get_model(s, job.model_version)
        assert model.stage == "production"
        assert model.labels == ["LOC", "ORG", "PER"]
        assert model.test_data_key == f"split:{dataset_id}:seed=42"
        assert model.base_model == ctx.settings.base_model
    keys = ctx.store.list(f"models/{job.model_version}/")
    assert f"models/{job.model_version}/manifest.json" in keys
    assert f"models/{job.model_version}/model.safetensors" in keys
    assert not any(k.endswith((".bin", ".pkl", ".pt")) for k in keys)  # no pickle

    # A redelivered message for the same job: skipped, nothing trained twice.
    assert run_job(ctx, job_id, run_training) == "skipped"


def test_training_with_given_test_set_compares_like_for_like(ctx, dataset_id) -> None:
    """A test set given by id: the production model is scored on it for the comparison."""
    job_id = _new_train_job(
        ctx,
        dataset_id,
        epochs=1,
        learning_rate=1e-5,
        validation_dataset_id=dataset_id,
        test_dataset_id=dataset_id,
    )
    assert run_job(ctx, job_id, run_training) == "done"
    job = _job(ctx, job_id)
    with session_scope(ctx.sessions) as s:
        model = registry.get_model(s, job.model_version)
        assert model.test_data_key == f"dataset:{dataset_id}"
        # One epoch at a tiny learning rate does not beat the production model.
        assert model.stage == "candidate"
        assert registry.production_ref(s).version != model.version


def test_dataset_uploaded_with_skip_invalid_trains(ctx, train_csv: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.csv"
    broken.write_text(train_csv.read_text() + "Angela lives,B-PER O O\n")
    dataset_id = _stored_dataset(ctx, broken, "broken", skip_invalid=True)
    job_id = _new_train_job(ctx, dataset_id, epochs=1, learning_rate=1e-5)
    assert run_job(ctx, job_id, run_training) == "done", _job(ctx, job_id).error
    assert _job(ctx, job_id).status == "succeeded"


def _bulk_job(ctx: Services, n: int) -> str:
    with session_scope(ctx.sessions) as s:
        version = registry.production_ref(s).version
        docs = [(f"d{i}", f"Priya Patel visited Oslo . {i}") for i in range(n)]
        return jobs.create_predict_job(s, ctx.outbox, docs, version).id


def test_bulk_resumes_without_redoing_documents(ctx) -> None:
    job_id = _bulk_job(ctx, 40)
    marker = [{"start": 0, "end": 1, "label": "MARK", "text": "P", "score": 1.0}]
    with session_scope(ctx.sessions) as s:
        attempt = jobs.claim(s, job_id, stale_after=60).attempt
        jobs.save_results(s, job_id, attempt, [(i, marker) for i in range(10)])  # a crashed run
        s.get(Job, job_id).heartbeat_at = None  # ... whose worker is gone
    assert run_job(ctx, job_id, run_bulk) == "done"
    with session_scope(ctx.sessions) as s:
        rows = dict(
            s.execute(
                select(JobResult.doc_index, JobResult.entities).where(JobResult.job_id == job_id)
            ).all()
        )
    assert sorted(rows) == list(range(40))
    assert all(rows[i] == marker for i in range(10))  # done documents were not redone
    assert {e["label"] for e in rows[20]} == {"PER", "LOC"}
    assert _job(ctx, job_id).status == "succeeded"


def test_bulk_cancel_stops_between_chunks(ctx, monkeypatch) -> None:
    job_id = _bulk_job(ctx, 80)  # five chunks of 16
    real = ctx.models.predictor

    def predictor_that_cancels(*args):
        predictor = real(*args)

        class Cancelling:
            def predict(self, texts):
                with session_scope(ctx.sessions) as s:
                    s.get(Job, job_id).status = "cancelling"
                return predictor.predict(texts)

        return Cancelling()

    monkeypatch.setattr(ctx.models, "predictor", predictor_that_cancels)
    assert run_job(ctx, job_id, run_bulk) == "cancelled"
    job = _job(ctx, job_id)
    assert job.status == "cancelled"
    with session_scope(ctx.sessions) as s:
        assert len(jobs.done_doc_indices(s, job_id)) == 16
