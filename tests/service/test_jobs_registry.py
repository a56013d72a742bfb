"""Job status machine, idempotent result writes, and the registry's promotion rule, on the
real PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select, text, update
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


def _candidate(version: str, f1: float, test_key: str = "split:x:seed=42") -> registry.Candidate:
    return registry.Candidate(
        version=version,
        job_id=None,
        base_model="tiny",
        labels=["PER"],
        metrics={"f1": f1},
        manifest_key=f"models/{version}/manifest.json",
        manifest_sha256="0" * 64,
        test_data_key=test_key,
    )


def _register(s, version: str, f1: float, test_key: str = "split:x:seed=42") -> Model:
    return registry.register(s, _candidate(version, f1, test_key))


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
        assert [j.id for j in jobs.stale_running_jobs(s, 60)] == [job_id]
        # Its worker died: a new delivery takes it over, as attempt 2.
        second = jobs.claim(s, job_id, stale_after=60)
        assert second is not None and second.attempt == 2
        jobs.finish(s, job_id, "succeeded", attempt=2)
    with session_scope(sessions) as s:
        assert jobs.claim(s, job_id, stale_after=60) is None
        assert jobs.stale_running_jobs(s, 60) == []


def test_cancel_paths(sessions, svc, dataset_id: str) -> None:
    with session_scope(sessions) as s:
        queued = jobs.create_train_job(s, svc.outbox, dataset_id, {})
        running = jobs.create_train_job(s, svc.outbox, dataset_id, {})
        attempt = jobs.claim(s, running.id, stale_after=60).attempt
        assert jobs.request_cancel(s, queued.id).status == "cancelled"
        assert jobs.request_cancel(s, running.id).status == "cancelling"
        status = jobs.record_progress(s, running.id, attempt, progress=0.5, stage="training")
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
        attempt = jobs.claim(s, job.id, stale_after=60).attempt
        jobs.save_results(s, job.id, attempt, first)
    with session_scope(sessions) as s:
        # A chunk written again (after a crash) overlaps what is there.
        jobs.save_results(s, job.id, attempt, [(i, []) for i in range(5)])
    with session_scope(sessions) as s:
        rows = s.execute(
            select(JobResult.doc_index, JobResult.entities).where(JobResult.job_id == job.id)
        ).all()
        assert sorted(i for i, _ in rows) == [0, 1, 2, 3, 4]
        assert all(ents for i, ents in rows if i < 3)  # the first write stands
        assert jobs.done_doc_indices(s, job.id) == {0, 1, 2, 3, 4}


def test_a_superseded_attempt_can_no_longer_write(sessions, svc) -> None:
    """Worker A looked dead and the job went to worker B: A's writes are refused."""
    with session_scope(sessions) as s:
        job = jobs.create_predict_job(s, svc.outbox, [("d", "text")], "v")
        a = jobs.claim(s, job.id, stale_after=60).attempt
        s.get(Job, job.id).heartbeat_at = utcnow() - timedelta(seconds=120)
    with session_scope(sessions) as s:
        b = jobs.claim(s, job.id, stale_after=60).attempt
    assert b == a + 1
    for write in (
        lambda s: jobs.record_progress(s, job.id, a, progress=0.9, stage="predicting"),
        lambda s: jobs.save_results(s, job.id, a, [(0, [])]),
        lambda s: jobs.current_status(s, job.id, a),
    ):
        with pytest.raises(jobs.LostClaim), session_scope(sessions) as s:
            write(s)
    with session_scope(sessions) as s:
        assert not jobs.finish(s, job.id, "failed", attempt=a, error="late")
        assert s.get(Job, job.id).status == "running" and s.get(Job, job.id).progress == 0.0
        assert jobs.finish(s, job.id, "succeeded", attempt=b)


def test_final_states_are_final_in_the_database(sessions, svc, dataset_id: str) -> None:
    with session_scope(sessions) as s:
        job_id = jobs.create_train_job(s, svc.outbox, dataset_id, {}).id
        jobs.request_cancel(s, job_id)
    with session_scope(sessions) as s:
        assert not jobs.finish(s, job_id, "succeeded")  # the code refuses...
    with pytest.raises(IntegrityError), session_scope(sessions) as s:
        s.execute(update(Job).where(Job.id == job_id).values(status="running"))  # ...so does SQL


def test_a_job_that_keeps_killing_workers_fails_after_n_attempts(sessions, svc) -> None:
    with session_scope(sessions) as s:
        job_id = jobs.create_predict_job(s, svc.outbox, [("d", "text")], "v").id
    for _ in range(3):
        with session_scope(sessions) as s:
            assert jobs.claim(s, job_id, stale_after=0, max_attempts=3) is not None
    with session_scope(sessions) as s:
        assert jobs.claim(s, job_id, stale_after=0, max_attempts=3) is None
        job = s.get(Job, job_id)
        assert job.status == "failed" and "started 3 times" in job.error


def _at_once(sessions, *calls) -> list[BaseException]:
    """Run each call (session → anything) in its own thread and transaction, all released
    together by a barrier; the errors they raised."""
    barrier = threading.Barrier(len(calls))
    errors: list[BaseException] = []

    def run(call) -> None:
        try:
            barrier.wait()
            with session_scope(sessions) as s:
                call(s)
        except BaseException as exc:  # recorded, asserted by the caller
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_two_trainings_finishing_together_leave_the_better_one(sessions, svc) -> None:
    """Both decide at once, each in its own transaction: one production model, the better
    one, and neither fails."""
    with session_scope(sessions) as s:
        s.execute(update(Model).values(stage="archived"))
    errors = _at_once(
        sessions,
        lambda s: registry.register_and_decide(s, _candidate("race-low", 0.70), against=None),
        lambda s: registry.register_and_decide(s, _candidate("race-high", 0.75), against=None),
    )
    assert errors == []
    with session_scope(sessions) as s:
        assert registry.production_ref(s).version == "race-high"
        stages = {m.version: m.stage for m in s.scalars(select(Model))}
        assert list(stages.values()).count("production") == 1


def test_two_promotes_at_once_both_succeed(sessions, svc) -> None:
    with session_scope(sessions) as s:
        _register(s, "p-1", 0.1)
        _register(s, "p-2", 0.1)
    errors = _at_once(
        sessions, lambda s: registry.promote(s, "p-1"), lambda s: registry.promote(s, "p-2")
    )
    assert errors == []
    with session_scope(sessions) as s:
        assert registry.production_ref(s).version in ("p-1", "p-2")
        assert s.scalar(select(func.count()).where(Model.stage == "production")) == 1


def _rows_touched(plan: dict) -> int:
    """Rows a plan node and its children produced or threw away (EXPLAIN ANALYZE)."""
    own = plan.get("Actual Rows", 0) * plan.get("Actual Loops", 1)
    own += plan.get("Rows Removed by Join Filter", 0) + plan.get("Rows Removed by Filter", 0)
    return int(own) + sum(_rows_touched(child) for child in plan.get("Plans", []))


def test_a_results_page_costs_its_size_right_after_the_job(sessions, svc) -> None:
    # Fresh rows have no planner statistics yet: that is when users fetch their results.
    # A join of results to documents was planned as a nested loop on the job id alone
    # there, touching documents x results rows for every page (seconds per page).
    n, limit = 3000, 500

    def finished_job() -> str:
        with session_scope(sessions) as s:
            job = jobs.create_predict_job(s, svc.outbox, [(f"d{i}", "t") for i in range(n)], "v")
        with session_scope(sessions) as s:
            attempt = jobs.claim(s, job.id, stale_after=60).attempt
            jobs.save_results(s, job.id, attempt, [(i, []) for i in range(n)])
        return str(job.id)

    # Statistics that know an earlier job, none that know this one (autovacuum's ANALYZE
    # has not come round yet): the planner then expects one row per side.
    finished_job()
    with session_scope(sessions) as s:
        s.execute(text("ANALYZE job_documents, job_results"))
    job_id = finished_job()
    statements: list[tuple[str, object]] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    with session_scope(sessions) as s:
        engine = s.get_bind()
        event.listen(engine, "before_cursor_execute", record)
        try:
            items, total = jobs.results_page(s, job_id, offset=n - limit, limit=limit)
        finally:
            event.remove(engine, "before_cursor_execute", record)
        assert total == n and [i["index"] for i in items] == list(range(n - limit, n))
        assert [i["document_id"] for i in items] == [f"d{i}" for i in range(n - limit, n)]
        touched = 0
        for statement, parameters in statements:
            plan = s.connection().exec_driver_sql(
                "EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters
            )
            touched += _rows_touched(plan.scalar_one()[0]["Plan"])
    # The job row, the count, the skipped and the returned rows: a few times n, not n².
    assert touched < 10 * n, touched


def test_results_pages_skip_documents_without_a_result_yet(sessions, svc) -> None:
    with session_scope(sessions) as s:
        job = jobs.create_predict_job(s, svc.outbox, [(f"d{i}", "t") for i in range(10)], "v")
    with session_scope(sessions) as s:
        attempt = jobs.claim(s, job.id, stale_after=60).attempt
        jobs.save_results(s, job.id, attempt, [(i, []) for i in (0, 2, 5, 7, 9)])
    with session_scope(sessions) as s:
        items, total = jobs.results_page(s, job.id, offset=1, limit=3)
    assert total == 5
    assert [(i["index"], i["document_id"]) for i in items] == [(2, "d2"), (5, "d5"), (7, "d7")]
