"""Caller mistakes get a 4xx with a useful detail; API keys; health and metrics.

The app runs in-process (TestClient) on the real database, broker and S3 server; no
worker is needed, since nothing here runs a job to its end.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from shared.db import OutboxMessage, session_scope
from shared.services import jobs
from shared.settings import Settings

pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def limited(service_settings: Settings) -> Settings:
    return service_settings.model_copy(
        update={"max_upload_bytes": 4096, "max_text_chars": 200, "max_texts_per_request": 4}
    )


@pytest.fixture(scope="module")
def client(limited: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(limited)) as c:
        yield c


def csv_file(text: str, name: str = "data.csv") -> dict:
    return {"file": (name, io.BytesIO(text.encode()), "text/csv")}


def test_unknown_ids_are_404(client: TestClient) -> None:
    for path in ("/jobs/nope", "/jobs/nope/results", "/models/nope", "/datasets/nope"):
        r = client.get(path)
        assert r.status_code == 404, path
        assert "not found" in r.json()["detail"]
    assert client.post("/jobs/nope/cancel").status_code == 404
    assert client.post("/models/nope/promote").status_code == 404
    r = client.post("/jobs/train", json={"dataset_id": "nope"})
    assert r.status_code == 404 and "dataset nope" in r.json()["detail"]
    r = client.post("/jobs/predict", json={"documents": [{"text": "x"}], "model_version": "nope"})
    assert r.status_code == 404


def test_invalid_dataset_is_422_with_lines(client: TestClient) -> None:
    bad = "text,labels\nAngela lives here,B-PER O\nBerlin,B-LOC\n"
    r = client.post("/datasets", files=csv_file(bad))
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert isinstance(detail, list) and detail
    assert {"line", "message"} <= set(detail[0])
    assert detail[0]["line"] == 2
    # The same file with its invalid records left out on request.
    r = client.post("/datasets", files=csv_file(bad), data={"skip_invalid": "true"})
    assert r.status_code == 201
    assert r.json()["sentences"] == 1 and "left out" in r.json()["warnings"][0]


def test_valid_dataset_answers_statistics(client: TestClient) -> None:
    good = "text,labels\nAngela lives in Berlin,B-PER O O B-LOC\n"
    r = client.post("/datasets", files=csv_file(good), data={"name": "mini"})
    assert r.status_code == 201
    body = r.json()
    assert body["name"] == "mini" and body["format"] == "csv"
    assert body["sentences"] == 1 and body["tokens"] == 4
    assert body["labels"] == {"LOC": 1, "PER": 1}
    assert client.get(f"/datasets/{body['id']}").json()["id"] == body["id"]


def test_malformed_bodies_are_422(client: TestClient) -> None:
    assert client.post("/predict", json={}).status_code == 422
    assert client.post("/predict", json={"text": "a", "texts": ["b"]}).status_code == 422
    assert client.post("/predict", json={"texts": []}).status_code == 422
    as_json = {"content-type": "application/json"}
    assert client.post("/predict", content=b"not json", headers=as_json).status_code == 422
    assert client.post("/jobs/train", json={"dataset_id": "x", "epochs": 0}).status_code == 422
    assert client.post("/jobs/train", json={}).status_code == 422
    assert client.post("/jobs/predict", json={"documents": []}).status_code == 422
    r = client.post("/jobs/predict", content=b"{", headers=as_json)
    assert r.status_code == 422
    r = client.post("/jobs/predict", files={"file": ("d.jsonl", io.BytesIO(b'{"id": 1}\n'))})
    assert r.status_code == 422 and r.json()["detail"][0]["line"] == 1
    assert client.get("/jobs", params={"status": "sleeping"}).status_code == 422
    assert client.get("/jobs", params={"limit": 0}).status_code == 422


def test_limits_are_413(client: TestClient) -> None:
    big = "text,labels\n" + "Angela lives here,B-PER O O\n" * 400
    r = client.post("/datasets", files=csv_file(big))
    assert r.status_code == 413
    assert "limit" in r.json()["detail"]
    r = client.post("/predict", json={"text": "x" * 201})
    assert r.status_code == 413 and "200" in r.json()["detail"]
    assert client.post("/predict", json={"texts": ["a"] * 5}).status_code == 413
    r = client.post("/jobs/predict", json={"documents": [{"text": "y" * 201}]})
    assert r.status_code == 413


def test_predict_without_model_is_503_with_advice(client: TestClient) -> None:
    r = client.post("/predict", json={"text": "Angela lives in Berlin"})
    assert r.status_code == 503
    assert "POST /jobs/train" in r.json()["detail"]
    r = client.post("/jobs/predict", json={"documents": [{"text": "x"}]})
    assert r.status_code == 503


def test_cancel_finished_job_is_409_and_queued_job_cancels(
    client: TestClient, sessions, svc
) -> None:
    good = "text,labels\nAngela lives in Berlin,B-PER O O B-LOC\n"
    dataset_id = client.post("/datasets", files=csv_file(good)).json()["id"]
    with session_scope(sessions) as s:
        done = jobs.create_train_job(s, svc.outbox, dataset_id, {})
        jobs.finish(s, done.id, "succeeded")
        queued = jobs.create_train_job(s, svc.outbox, dataset_id, {})
    r = client.post(f"/jobs/{done.id}/cancel")
    assert r.status_code == 409
    assert "succeeded" in r.json()["detail"]
    r = client.post(f"/jobs/{queued.id}/cancel")
    assert r.status_code == 202 and r.json()["status"] == "cancelled"
    assert client.get(f"/jobs/{done.id}/results").status_code == 409  # not a predict job


def test_job_listing_filters_and_pages(client: TestClient, sessions, svc) -> None:
    good = "text,labels\nAngela lives in Berlin,B-PER O O B-LOC\n"
    dataset_id = client.post("/datasets", files=csv_file(good)).json()["id"]
    with session_scope(sessions) as s:
        for _ in range(3):
            jobs.finish(
                s, jobs.create_train_job(s, svc.outbox, dataset_id, {}).id, "failed", error="boom"
            )
    failed = client.get("/jobs", params={"type": "train", "status": "failed"}).json()
    assert failed["total"] >= 3
    assert all(j["status"] == "failed" and j["type"] == "train" for j in failed["items"])
    page = client.get("/jobs", params={"status": "failed", "limit": 2, "offset": 1}).json()
    assert len(page["items"]) == 2 and page["total"] == failed["total"]


def test_health_ready_metrics(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "broker": "ok", "object_store": "ok"}
    client.get("/jobs/nope")
    text = client.get("/metrics").text
    assert 'ner_http_requests_total{method="GET",route="/jobs/{job_id}",status="404"}' in text
    assert "ner_http_request_duration_seconds_bucket" in text
    assert 'ner_jobs{status="failed",type="train"}' in text
    assert client.get("/openapi.json").status_code == 200


def test_readyz_503_when_a_dependency_is_down(limited: Settings, sessions) -> None:
    broken = limited.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"})
    with TestClient(create_app(broken)) as c:
        r = c.get("/readyz")
        assert r.status_code == 503
        checks = r.json()["detail"]["checks"]
        assert checks["database"] == "ok" and checks["broker"].startswith("error")
        # A job submitted while the broker is down is accepted: its row and its outbox
        # intent are committed, and the message waits for the sweeper (test_outbox.py).
        good = "text,labels\nAngela lives in Berlin,B-PER O O B-LOC\n"
        dataset_id = c.post("/datasets", files=csv_file(good)).json()["id"]
        r = c.post("/jobs/train", json={"dataset_id": dataset_id})
        assert r.status_code == 202 and r.json()["status"] == "queued"
    with session_scope(sessions) as s:
        intent = s.get(OutboxMessage, r.json()["id"])
        assert intent is not None and intent.sent_at is None


def test_api_keys(limited: Settings) -> None:
    keyed = limited.model_copy(update={"api_keys": "alpha, beta"})
    with TestClient(create_app(keyed)) as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/readyz").status_code == 200
        assert c.get("/docs").status_code == 200
        r = c.get("/jobs")
        assert r.status_code == 401 and "Bearer" in r.json()["detail"]
        assert c.get("/jobs", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/jobs", headers={"Authorization": "Bearer beta"}).status_code == 200
        assert c.post("/predict", json={"text": "x"}).status_code == 401
        assert c.get("/metrics").status_code == 401
