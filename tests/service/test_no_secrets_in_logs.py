"""No API key, dataset text or document text in the logs (issue 7, point 6).

A real API process and a real worker, on PostgreSQL, Redis and S3, run the whole life of a
dataset, a training, /predict and bulk jobs with keys in their headers and marker words in
every text, including inputs that make a component fail and log its error (an invalid
dataset, a lone surrogate, a NUL character PostgreSQL refuses, wrong keys). Then neither
process's log output may contain any key or any marker.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shared.db import session_scope
from shared.services import keys
from shared.settings import Settings
from tests.service.conftest import running_stack, settings_env, wait_job
from tests.service.data import csv_text, near_miss

pytestmark = pytest.mark.services

QUICK_KEY = "quick-start-secret-Hq7Zr2"
WRONG_KEY = "ner_" + "W" * 43
# Words that appear nowhere but in what callers send.
DATASET_MARKER = "Zorblaxian"
PREDICT_MARKER = "Quuxfeldt"
BULK_MARKER = "Vromnitzky"
MARKERS = (DATASET_MARKER, PREDICT_MARKER, BULK_MARKER)


@pytest.fixture(scope="module")
def run(
    service_settings: Settings,
    svc,
    tiny_base_model: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict]:
    with session_scope(svc.sessions) as s:
        _row, token = keys.create_key(s, "log test", ["admin"])
    logs = tmp_path_factory.mktemp("secret-logs")
    env = settings_env(
        service_settings, NER_BASE_MODEL=str(tiny_base_model), NER_API_KEYS=QUICK_KEY
    )
    with running_stack(env, logs) as stack:
        yield {**stack, "token": token}


def test_no_key_or_text_reaches_the_logs(run: dict) -> None:
    token = run["token"]
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=run["base"], headers=auth, timeout=120) as c:
        # A dataset whose people are all called DATASET_MARKER, and an invalid one.
        data = csv_text(120).replace("Angela", DATASET_MARKER)
        assert DATASET_MARKER in data
        r = c.post("/datasets", files={"file": ("people.csv", io.BytesIO(data.encode()))})
        assert r.status_code == 201, r.text
        dataset_id = r.json()["id"]
        bad = f"text,labels\n{DATASET_MARKER} lives here,B-PER\n"
        r = c.post("/datasets", files={"file": ("bad.csv", io.BytesIO(bad.encode()))})
        assert r.status_code == 422

        job = c.post(
            "/jobs/train",
            json={"dataset_id": dataset_id, "epochs": 2, "learning_rate": 5e-3},
        ).json()
        job = wait_job(c, job["id"], {"succeeded", "failed", "cancelled"}, timeout=600)
        assert job["status"] == "succeeded", job

        deadline = time.monotonic() + 30
        while True:
            r = c.post("/predict", json={"text": f"{PREDICT_MARKER} lives in Berlin ."})
            if r.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert r.status_code == 200, r.text
        # Inputs that make parts fail and log: whatever they answer (even a dropped
        # connection), they must log no text. A lone surrogate cannot be encoded as UTF-8:
        # it is sent as JSON's ASCII escape.
        as_json = {"content-type": "application/json", **auth}
        failing = [
            ("/predict", json.dumps({"texts": [f"{PREDICT_MARKER} \ud800 here", "ok"]})),
            ("/jobs/predict", json.dumps({"documents": [{"text": f"{BULK_MARKER}\u0000"}]})),
        ]
        for path, body in failing:
            with contextlib.suppress(httpx.TransportError):
                httpx.post(run["base"] + path, content=body, headers=as_json, timeout=60)
        with contextlib.suppress(httpx.TransportError):
            httpx.post(
                run["base"] + "/datasets",
                files={"file": ("x.csv", io.BytesIO(data.encode()))},
                data={"name": f"{DATASET_MARKER}\u0000"},
                headers=auth,
                timeout=60,
            )

        r = c.post(
            "/jobs/predict",
            json={"documents": [{"id": "a", "text": f"{BULK_MARKER} works for Acme in Oslo ."}]},
        )
        assert r.status_code == 202, r.text
        bulk = wait_job(c, r.json()["id"], {"succeeded", "failed", "cancelled"}, timeout=300)
        assert bulk["status"] == "succeeded", bulk

        for key in (WRONG_KEY, "not-even-a-token", near_miss(token)):
            assert c.get("/jobs", headers={"Authorization": f"Bearer {key}"}).status_code == 401
        assert c.get("/metrics", headers={"Authorization": f"Bearer {QUICK_KEY}"}).is_success

    run["worker"].stop()
    run["api"].stop()
    api_log = run["api"].log.read_text(errors="replace")
    worker_log = run["worker"].log.read_text(errors="replace")
    # The logs were written (so an empty file cannot pass this test).
    assert "now serving model" in api_log
    assert "succeeded" in worker_log
    secrets_ = (token, token[4:], token[12:], QUICK_KEY, WRONG_KEY, *MARKERS)
    for name, log in (("api", api_log), ("worker", worker_log)):
        lowered = log.lower()
        for secret in secrets_:
            assert secret.lower() not in lowered, f"{secret!r} in the {name} log"
