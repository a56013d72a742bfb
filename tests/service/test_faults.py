"""Faults lose nothing (issue 7, point 5), each on real servers with real API and worker
processes: a worker SIGKILLed mid-training resumes from its checkpoint; one SIGKILLed
mid-bulk-job is taken over by another worker within 30 s; Redis restarted (with the
append-only file compose uses) mid-bulk-job; PostgreSQL restarted under /predict and job
traffic; a 30-second database outage during training. Every job ends final, every
document tagged exactly once."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from shared.settings import Settings
from shared.storage import make_store
from tests.service.conftest import (
    ROOT,
    Process,
    free_port,
    settings_env,
    wait_http_ok,
    wait_job,
)

pytestmark = pytest.mark.services
SENTENCE = "Tomas Novak works for Globex in Lima . "


class AofRedis:
    """A Redis of our own with the append-only file on, as compose runs it."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()

    def start(self) -> AofRedis:
        subprocess.run(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--appendonly",
                "yes",
                "--save",
                "",
                "--dir",
                str(self.folder),
                "--daemonize",
                "yes",
                "--logfile",
                str(self.folder / "redis.log"),
                "--pidfile",
                str(self.folder / "redis.pid"),
            ],
            check=True,
        )
        client = redis.Redis(port=self.port)
        for _ in range(100):
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError("redis did not start")

    def restart(self, down_seconds: float) -> None:
        redis.Redis(port=self.port).shutdown()  # writes the AOF; the connection drops
        time.sleep(down_seconds)
        self.start()

    def stop(self) -> None:
        with contextlib.suppress(redis.ConnectionError):
            redis.Redis(port=self.port).shutdown(nosave=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


def postgres(action: str) -> None:
    subprocess.run([str(ROOT / "scripts" / "services.sh"), action], check=True, env=os.environ)


@pytest.fixture(scope="module")
def fault_stack(
    service_settings: Settings, tiny_base_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict]:
    """API + two workers on production timings for takeover (a job is stale after 20 s
    without a heartbeat, the sweeper runs every 5 s), checkpoints every second."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not installed")
    folder = tmp_path_factory.mktemp("faults")
    broker = AofRedis(folder).start()
    settings = service_settings.model_copy(
        update={"broker_url": broker.url, "stale_job_seconds": 20.0, "sweep_seconds": 5.0}
    )
    env = settings_env(
        settings,
        NER_BASE_MODEL=str(tiny_base_model),
        NER_CHECKPOINT_SECONDS="1",
        NER_SWEEP_SECONDS="5",
    )
    port = free_port()
    api = Process(["-m", "api", "--port", str(port)], env, folder / "api.log").start()
    workers = [Process(["-m", "worker"], env, folder / f"worker{i}.log") for i in (0, 1)]
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http_ok(f"{base}/readyz", api)
        yield {
            "base": base,
            "api": api,
            "workers": workers,
            "broker": broker,
            "settings": settings,
            "env": env,
        }
    finally:
        for w in workers:
            w.stop()
        api.stop()
        broker.stop()


@pytest.fixture(scope="module")
def client(fault_stack: dict) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fault_stack["base"], timeout=30) as c:
        yield c


def _ready(worker: Process, timeout: float = 120) -> None:
    """Wait until the worker consumes (its log says it is ready)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if " ready." in worker.tail(200):
            return
        time.sleep(0.2)
    raise TimeoutError(worker.tail())


def _alive(worker: Process) -> bool:
    return worker.proc is not None and worker.proc.poll() is None


def _one_worker(fault_stack: dict) -> tuple[Process, Process]:
    """(the one running worker, the stopped one): starting a worker takes seconds, so one
    that is already running is kept."""
    workers = fault_stack["workers"]
    running = [w for w in workers if _alive(w)]
    if len(running) == 2:
        running[1].stop()
        running = running[:1]
    if not running:
        running = [workers[0].start()]
        _ready(running[0])
    spare = next(w for w in workers if w is not running[0])
    return running[0], spare


def _wait_running(client: httpx.Client, job_id: str, ok) -> dict:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}").json()
        if job["status"] == "running" and ok(job):
            return job
        assert job["status"] in ("queued", "running"), job
        time.sleep(0.1)
    raise AssertionError(f"job never got there: {job}")


def _results_total(client: httpx.Client, job_id: str) -> int:
    return client.get(f"/jobs/{job_id}/results", params={"limit": 1}).json()["total"]


def _each_document_once(client: httpx.Client, job_id: str, docs: list[dict]) -> None:
    ids: list[str] = []
    for offset in range(0, len(docs), 500):
        page = client.get(f"/jobs/{job_id}/results", params={"offset": offset, "limit": 500})
        ids += [it["document_id"] for it in page.json()["items"]]
    assert ids == [d["id"] for d in docs]


def _first_model(client: httpx.Client, fault_stack: dict) -> None:
    """A production model for the bulk jobs (trained once per module)."""
    if client.get("/models").json()["total"]:
        return
    csv = "text,labels\n" + "".join(
        f"{name} visited {city} .,B-PER O B-LOC O\n"
        for name, city in [("Angela", "Berlin"), ("Priya", "Oslo"), ("Tomas", "Lima")] * 20
    )
    ds = client.post("/datasets", files={"file": ("p.csv", csv.encode(), "text/csv")}).json()
    job = client.post("/jobs/train", json={"dataset_id": ds["id"], "epochs": 2}).json()
    job = wait_job(client, job["id"], {"succeeded", "failed"}, timeout=300)
    assert job["status"] == "succeeded", job


def _long_training(client: httpx.Client, epochs: int) -> dict:
    """A training job on the tiny model that runs `epochs` epochs (no early stop)."""
    csv = "text,labels\n" + "".join(
        f"{n} met {c} in {p} .,B-PER O B-PER O B-LOC O\n"
        for n, c, p in [("Angela", "Priya", "Berlin"), ("Tomas", "Omar", "Lima")] * 60
    )
    ds = client.post("/datasets", files={"file": ("t.csv", csv.encode(), "text/csv")}).json()
    body = {"dataset_id": ds["id"], "epochs": epochs, "patience": epochs}
    return client.post("/jobs/train", json=body).json()


def test_killed_worker_mid_bulk_job_is_taken_over_within_30_s(client, fault_stack) -> None:
    first, second = _one_worker(fault_stack)
    _first_model(client, fault_stack)
    # Enough work that the job is still running when the spare worker is up, however long
    # that takes on a busy machine (a faster worker once finished before the kill).
    docs = [{"id": f"k{i}", "text": f"{i} " + SENTENCE * 12} for i in range(2400)]
    job_id = client.post("/jobs/predict", json={"documents": docs}).json()["id"]
    _wait_running(client, job_id, lambda j: 0.02 < j["progress"] < 0.2)
    second.start()
    _ready(second)
    at_kill = client.get(f"/jobs/{job_id}").json()
    first.kill()
    killed = time.monotonic()
    assert at_kill["status"] == "running", f"the job ended before its worker was killed: {at_kill}"
    print(f"\nworker killed at progress {at_kill['progress']:.2f}")
    done_at_kill = _results_total(client, job_id)
    while client.get(f"/jobs/{job_id}").json()["attempts"] < 2:
        assert time.monotonic() - killed < 30, "no worker took the job up within 30 s"
        time.sleep(0.25)
    taken_over = time.monotonic() - killed
    while _results_total(client, job_id) <= done_at_kill:
        assert time.monotonic() - killed < 120, "the new attempt stored nothing"
        time.sleep(0.25)
    print(
        f"\nbulk job taken over {taken_over:.1f} s after its worker was killed; "
        f"new results {time.monotonic() - killed:.1f} s after"
    )
    job = wait_job(client, job_id, {"succeeded", "failed", "cancelled"}, timeout=400)
    assert job["status"] == "succeeded" and job["attempts"] == 2, job
    _each_document_once(client, job_id, docs)


def test_killed_worker_mid_training_resumes_from_its_checkpoint(client, fault_stack) -> None:
    first, second = _one_worker(fault_stack)
    job = _long_training(client, epochs=60)
    store = make_store(fault_stack["settings"].storage_url, fault_stack["settings"].s3_endpoint_url)
    manifest = f"checkpoints/{job['id']}/manifest.json"
    running = _wait_running(
        client, job["id"], lambda j: (j.get("metrics") or {}).get("epoch", 0) >= 3
    )
    assert store.exists(manifest)
    second.start()
    _ready(second)
    step_at_kill = client.get(f"/jobs/{job['id']}").json()["metrics"]["step"]
    first.kill()
    killed = time.monotonic()
    # The new attempt's first reported step is where the checkpoint was, not step 1.
    resumed = _wait_running(
        client, job["id"], lambda j: j["attempts"] == 2 and (j.get("metrics") or {}).get("step")
    )
    first_step = resumed["metrics"]["step"]
    print(
        f"\ntraining killed at step {step_at_kill} (epoch {running['metrics']['epoch']}+), "
        f"resumed by attempt 2 at step {first_step}, {time.monotonic() - killed:.1f} s later"
    )
    assert first_step > step_at_kill // 2 and first_step > 1
    client.post(f"/jobs/{job['id']}/cancel")  # the rest would only take time
    job = wait_job(client, job["id"], {"cancelled", "succeeded", "failed"}, timeout=120)
    assert job["status"] in ("cancelled", "succeeded"), job
    # An ended job leaves no checkpoint behind. A job that succeeds (it may, before the
    # cancel arrives) removes it just after its registration is committed (it is kept
    # until then, for a retry): allow that moment.
    deadline = time.monotonic() + 10
    while store.exists(manifest) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not store.exists(manifest)


def test_redis_restart_mid_bulk_job_loses_nothing(client, fault_stack) -> None:
    _one_worker(fault_stack)
    _first_model(client, fault_stack)
    docs = [{"id": f"r{i}", "text": f"{i} " + SENTENCE * 10} for i in range(600)]
    job_id = client.post("/jobs/predict", json={"documents": docs}).json()["id"]
    _wait_running(client, job_id, lambda j: 0.05 < j["progress"] < 0.6)
    fault_stack["broker"].restart(down_seconds=3)
    job = wait_job(client, job_id, {"succeeded", "failed", "cancelled"}, timeout=400)
    assert job["status"] == "succeeded", job
    _each_document_once(client, job_id, docs)
    # And the broker works after its restart: a new job goes through.
    more = client.post("/jobs/predict", json={"documents": docs[:5]}).json()
    assert wait_job(client, more["id"], {"succeeded", "failed"}, timeout=120)["status"] == (
        "succeeded"
    )


def test_postgres_restart_under_traffic(client, fault_stack) -> None:
    _one_worker(fault_stack)
    _first_model(client, fault_stack)
    stop = threading.Event()
    outcomes: list[int] = []

    def predict_traffic() -> None:
        with httpx.Client(base_url=fault_stack["base"], timeout=30) as c:
            while not stop.is_set():
                outcomes.append(
                    c.post("/predict", json={"text": "Angela visited Lima ."}).status_code
                )
                time.sleep(0.05)

    traffic = threading.Thread(target=predict_traffic)
    traffic.start()
    docs = [{"id": f"p{i}", "text": f"{i} " + SENTENCE * 10} for i in range(400)]
    job_id = client.post("/jobs/predict", json={"documents": docs}).json()["id"]
    _wait_running(client, job_id, lambda j: j["progress"] > 0.05)
    postgres("pg-stop")
    try:
        time.sleep(1)
        down = client.get("/jobs")
        assert down.status_code == 503 and down.headers["Retry-After"].isdigit(), down.text
        time.sleep(4)
    finally:
        postgres("pg-start")
    deadline = time.monotonic() + 30
    while client.get("/jobs").status_code != 200:
        assert time.monotonic() < deadline, "the API did not recover"
        time.sleep(0.5)
    job = wait_job(client, job_id, {"succeeded", "failed", "cancelled"}, timeout=400)
    stop.set()
    traffic.join()
    assert job["status"] == "succeeded", job
    _each_document_once(client, job_id, docs)
    # /predict serves from memory: the database being away did not fail it.
    assert outcomes and set(outcomes) == {200}, sorted(set(outcomes))


def test_training_goes_on_through_a_30_second_database_outage(client, fault_stack) -> None:
    _, spare = _one_worker(fault_stack)
    spare.start()  # a second worker, which must not take the job over
    job = _long_training(client, epochs=1000)
    before = _wait_running(client, job["id"], lambda j: (j.get("metrics") or {}).get("step"))
    postgres("pg-stop")
    try:
        time.sleep(30)
    finally:
        postgres("pg-start")
    deadline = time.monotonic() + 60
    while True:
        r = client.get(f"/jobs/{job['id']}")
        if r.status_code == 200 and r.json()["metrics"]["step"] > before["metrics"]["step"] + 5:
            after = r.json()
            break
        assert time.monotonic() < deadline, r.text
        time.sleep(0.5)
    time.sleep(25)  # longer than the stale period: nobody takes the job over
    after = client.get(f"/jobs/{job['id']}").json()
    assert after["status"] == "running" and after["attempts"] == 1, after
    client.post(f"/jobs/{job['id']}/cancel")
    job = wait_job(client, job["id"], {"cancelled", "succeeded", "failed"}, timeout=60)
    assert job["status"] == "cancelled" and job["attempts"] == 1, job
