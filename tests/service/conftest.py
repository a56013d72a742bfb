"""Fixtures for the service tests: real PostgreSQL, Redis and S3 server (scripts/services.sh),
a fresh database, bucket and Redis DB per session, and real API / worker processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from shared.migrate import upgrade_to_head
from shared.services.context import Services
from shared.settings import Settings
from shared.storage import S3Store, make_store
from tests.service.data import csv_text, vocabulary

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = ("NER_DATABASE_URL", "NER_BROKER_URL", "NER_S3_ENDPOINT_URL")


def _services_env() -> dict[str, str] | None:
    if not all(os.environ.get(k) for k in REQUIRED):
        return None
    if not os.environ["NER_DATABASE_URL"].startswith("postgresql"):
        return None
    return {k: os.environ[k] for k in REQUIRED}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _services_env() is not None:
        return
    skip = pytest.mark.skip(
        reason="needs PostgreSQL, Redis and S3: run scripts/test.sh "
        "(or `scripts/services.sh start` and source var/services/env)"
    )
    for item in items:
        if "services" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def services() -> dict[str, str]:
    env = _services_env()
    if env is None:
        pytest.skip("services not configured")
    return env


@pytest.fixture(scope="module")
def database_url(services: dict[str, str]) -> Iterator[str]:
    """A fresh database for each test module, migrated with `alembic upgrade head`."""
    admin_url = make_url(services["NER_DATABASE_URL"])
    name = f"ner_test_{uuid.uuid4().hex[:8]}"
    # pre_ping: the fault tests restart PostgreSQL under this pool.
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    upgrade_to_head(url)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="module")
def broker_url(services: dict[str, str]) -> str:
    """The Redis broker, emptied: no message left by an earlier run reaches our worker."""
    url = services["NER_BROKER_URL"]
    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture(scope="module")
def storage_url(services: dict[str, str]) -> str:
    bucket = f"ner-test-{uuid.uuid4().hex[:8]}"
    store = make_store(f"s3://{bucket}/objects", services["NER_S3_ENDPOINT_URL"])
    assert isinstance(store, S3Store)
    store.ensure_bucket()
    return f"s3://{bucket}/objects"


@pytest.fixture(scope="module")
def service_settings(
    database_url: str,
    broker_url: str,
    storage_url: str,
    services: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Settings:
    return Settings(
        _env_file=None,
        database_url=database_url,
        broker_url=broker_url,
        storage_url=storage_url,
        s3_endpoint_url=services["NER_S3_ENDPOINT_URL"],
        data_dir=tmp_path_factory.mktemp("var"),
        model_poll_seconds=0.5,
        progress_interval_seconds=0.5,
        cancel_check_seconds=0.5,
        stale_job_seconds=6,
        bulk_chunk_size=16,
    )


@pytest.fixture(scope="module")
def svc(service_settings: Settings) -> Iterator[Services]:
    """The service layer's resources, as the API and the worker build them."""
    built = Services.from_settings(service_settings)
    yield built
    built.close()


@pytest.fixture(scope="module")
def sessions(svc: Services):
    return svc.sessions


@pytest.fixture(scope="session")
def tiny_base_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.tiny_model import make_tiny_bert

    return make_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), vocabulary())


@pytest.fixture(scope="session")
def train_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "people.csv"
    path.write_text(csv_text(120))
    return path


def settings_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The process environment that gives a child process these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NER_")}
    env.update(
        {
            "NER_DATABASE_URL": settings.database_url,
            "NER_BROKER_URL": settings.broker_url,
            "NER_STORAGE_URL": settings.storage_url,
            "NER_DATA_DIR": str(settings.data_dir),
            "NER_MODEL_POLL_SECONDS": str(settings.model_poll_seconds),
            "NER_PROGRESS_INTERVAL_SECONDS": str(settings.progress_interval_seconds),
            "NER_CANCEL_CHECK_SECONDS": str(settings.cancel_check_seconds),
            "NER_STALE_JOB_SECONDS": str(settings.stale_job_seconds),
            "NER_BULK_CHUNK_SIZE": str(settings.bulk_chunk_size),
            "PYTHONUNBUFFERED": "1",
            "TOKENIZERS_PARALLELISM": "false",
        }
    )
    if settings.s3_endpoint_url:
        env["NER_S3_ENDPOINT_URL"] = settings.s3_endpoint_url
    if settings.base_model:
        env["NER_BASE_MODEL"] = settings.base_model
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    """A child process (API or worker) whose output goes to a log file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args, self.env, self.log = args, env, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        out = open(self.log, "ab")  # noqa: SIM115 - handed to the child, closed with it
        self.proc = subprocess.Popen(
            [sys.executable, *self.args],
            env=self.env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()
        return self

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to clean up (a crash)."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self, timeout: float = 20) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            return None

    def tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


def wait_http_ok(url: str, proc: Process, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.proc is not None and proc.proc.poll() is not None:
            raise RuntimeError(f"process exited ({proc.proc.returncode}):\n{proc.tail()}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer in {timeout}s:\n{proc.tail()}")


def wait_job(client: httpx.Client, job_id: str, statuses: set[str], timeout: float = 400) -> dict:
    """Poll GET /jobs/{id} until the job reaches one of `statuses`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}").json()
        if job["status"] in statuses:
            return job
        time.sleep(0.25)
    raise AssertionError(f"job {job_id} not {statuses} after {timeout}s: {job}")


@contextmanager
def running_stack(env: dict[str, str], logs: Path) -> Iterator[dict]:
    """A real API server and a real Celery worker, as separate processes, with `env`."""
    port = free_port()
    api = Process(["-m", "api", "--port", str(port)], env, logs / "api.log").start()
    worker = Process(["-m", "worker"], env, logs / "worker.log").start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http_ok(f"{base}/readyz", api)
        yield {"base": base, "api": api, "worker": worker, "env": env, "logs": logs}
    finally:
        worker.stop()
        api.stop()


@pytest.fixture(scope="module")
def stack(
    service_settings: Settings, tiny_base_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict]:
    """A real API server and a real Celery worker, as separate processes."""
    logs = tmp_path_factory.mktemp("logs")
    with running_stack(
        settings_env(service_settings, NER_BASE_MODEL=str(tiny_base_model)), logs
    ) as s:
        yield s
