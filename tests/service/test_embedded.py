"""`ner serve`'s embedded mode end to end: no outside servers — SQLite, kombu's filesystem
transport and a local object directory — with the same API and worker code, the worker as
a real child process; SIGTERM stops both."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import httpx

from tests.service.conftest import Process, free_port, wait_http_ok, wait_job


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes (its parent exited without reaping).
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_embedded_serve_end_to_end(tmp_path: Path, tiny_base_model: Path, train_csv: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NER_", "AWS_"))}
    env.update(
        NER_DATA_DIR=str(tmp_path / "var"),
        NER_BASE_MODEL=str(tiny_base_model),
        NER_MODEL_POLL_SECONDS="0.5",
        PYTHONUNBUFFERED="1",
        TOKENIZERS_PARALLELISM="false",
    )
    port = free_port()
    # What `ner serve` runs.
    args = ["-m", "cli", "serve", "--port", str(port)]
    server = Process(args, env, tmp_path / "serve.log")
    server.start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http_ok(f"{base}/readyz", server)
        with httpx.Client(base_url=base, timeout=60) as client:
            with open(train_csv, "rb") as fh:
                r = client.post("/datasets", files={"file": ("people.csv", fh)})
            assert r.status_code == 201, r.text
            r = client.post(
                "/jobs/train",
                json={"dataset_id": r.json()["id"], "epochs": 5, "learning_rate": 5e-3},
            )
            assert r.status_code == 202
            job_id = r.json()["id"]
            job = wait_job(client, job_id, {"succeeded", "failed", "cancelled"}, timeout=400)
            assert job["status"] == "succeeded", f"{job}\n{server.tail()}"
            version = job["model_version"]

            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                r = client.post("/predict", json={"text": "Angela Merkel lives in Paris ."})
                if r.status_code == 200:
                    break
                time.sleep(0.2)
            assert r.status_code == 200, r.text
            assert r.json()["model_version"] == version
            labels = {(e["text"], e["label"]) for e in r.json()["entities"]}
            assert labels == {("Angela Merkel", "PER"), ("Paris", "LOC")}

            docs = [{"text": f"Omar works for Hooli in Lima . {i}"} for i in range(10)]
            r = client.post("/jobs/predict", json={"documents": docs})
            assert r.status_code == 202
            bulk_id = r.json()["id"]
            job = wait_job(client, bulk_id, {"succeeded", "failed"}, timeout=200)
            assert job["status"] == "succeeded", job
            assert client.get(f"/jobs/{bulk_id}/results").json()["total"] == 10
        assert (tmp_path / "var" / "ner.sqlite3").is_file()
        assert any((tmp_path / "var" / "objects" / "models").iterdir())
    finally:
        log = server.tail(400)
        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)  # to the server only, as a service manager would
        code = server.proc.wait(60)
    assert code == 0, log
    worker_pids = [int(p) for p in re.findall(r"worker started \(pid (\d+)\)", log)]
    assert worker_pids
    time.sleep(0.5)
    assert not any(_pid_alive(pid) for pid in worker_pids)
