"""Enqueue after commit, by one mechanism (shared/services/outbox.py): a job's message is
sent only once its row is committed, and a job whose message was never sent (the API
killed between commit and send) or was lost (the broker flushed) is sent again by the
sweeper, never left queued for ever. Real PostgreSQL, Redis and API process."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy.orm import sessionmaker

from shared.db import Job, OutboxMessage, session_scope
from shared.queue import TRAINING_QUEUE
from shared.services import jobs
from shared.services.context import Services
from shared.settings import Settings
from tests.service.conftest import Process, free_port, settings_env

pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def fast(service_settings: Settings) -> Iterator[Services]:
    """Services whose sweeper sends at once and re-sends a queued job after half a second."""
    settings = service_settings.model_copy(
        update={"outbox_grace_seconds": 0.0, "outbox_resend_seconds": 0.5}
    )
    built = Services.from_settings(settings)
    yield built
    built.close()


@pytest.fixture
def queue(fast: Services) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(fast.settings.broker_url)
    client.delete(TRAINING_QUEUE)
    yield client
    client.delete(TRAINING_QUEUE)


def _messages_for(queue: redis.Redis, job_id: str) -> int:
    return sum(job_id in raw.decode() for raw in queue.lrange(TRAINING_QUEUE, 0, -1))


@pytest.fixture(scope="module")
def dataset_id(fast: Services, train_csv: Path) -> str:
    from shared.services.datasets import create_dataset

    with session_scope(fast.sessions) as s, open(train_csv, "rb") as fh:
        row = create_dataset(
            s,
            fast.store,
            fh,
            filename="people.csv",
            name="people",
            skip_invalid=False,
            max_bytes=10**6,
        )
        return row.id


def test_message_is_sent_after_commit_and_not_after_rollback(fast, queue, dataset_id) -> None:
    with session_scope(fast.sessions) as s:
        job_id = jobs.create_train_job(s, fast.outbox, dataset_id, {}).id
        assert _messages_for(queue, job_id) == 0  # not before the commit
    assert _messages_for(queue, job_id) == 1
    with session_scope(fast.sessions) as s:
        assert s.get(OutboxMessage, job_id).sent_at is not None

    with pytest.raises(RuntimeError), session_scope(fast.sessions) as s:
        rolled_back = jobs.create_train_job(s, fast.outbox, dataset_id, {}).id
        raise RuntimeError("the request failed after the job was written")
    assert _messages_for(queue, rolled_back) == 0
    with session_scope(fast.sessions) as s:
        assert s.get(Job, rolled_back) is None


def test_commit_without_send_is_swept(fast, queue, dataset_id) -> None:
    """A process that dies right after the commit: the sweeper sends the message."""
    without_hook = sessionmaker(fast.engine, expire_on_commit=False)  # no after-commit send
    with session_scope(without_hook) as s:
        job_id = jobs.create_train_job(s, fast.outbox, dataset_id, {}).id
    assert _messages_for(queue, job_id) == 0
    assert job_id in fast.outbox.sweep()
    assert _messages_for(queue, job_id) == 1
    # Sent once: the next sweep (before the resend delay) leaves it alone.
    assert job_id not in fast.outbox.sweep()


def test_flushed_broker_is_refilled_for_queued_jobs(fast, queue, dataset_id) -> None:
    with session_scope(fast.sessions) as s:
        job_id = jobs.create_train_job(s, fast.outbox, dataset_id, {}).id
    assert _messages_for(queue, job_id) == 1
    queue.flushdb()  # the broker lost every message
    time.sleep(0.6)
    assert job_id in fast.outbox.sweep()
    assert _messages_for(queue, job_id) == 1
    # A job that ended is never re-sent.
    with session_scope(fast.sessions) as s:
        jobs.request_cancel(s, job_id)
    time.sleep(1.1)
    assert job_id not in fast.outbox.sweep()


class _BlackHole:
    """A TCP server that accepts connections and never answers: a broker that hangs."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


def test_api_killed_between_commit_and_send(
    fast, queue, dataset_id, service_settings: Settings, tmp_path: Path
) -> None:
    """The API commits the job, then hangs sending to the broker and is SIGKILLed there:
    the job is committed and queued, and the sweeper sends its message."""
    hole = _BlackHole()
    port = free_port()
    env = settings_env(
        service_settings,
        NER_BROKER_URL=f"redis://127.0.0.1:{hole.port}/0",
        NER_OUTBOX_GRACE_SECONDS="0",
    )
    api = Process(["-m", "api", "--port", str(port)], env, tmp_path / "api.log").start()
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.3)
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{base}/jobs/train", json={"dataset_id": dataset_id}, timeout=3)
        with session_scope(fast.sessions) as s:
            job = s.query(Job).order_by(Job.created_at.desc()).first()
            assert job is not None and job.status == "queued"
            job_id = job.id
            assert s.get(OutboxMessage, job_id).sent_at is None
    finally:
        api.kill()
        hole.close()
    assert _messages_for(queue, job_id) == 0
    assert job_id in fast.outbox.sweep()
    assert _messages_for(queue, job_id) == 1
