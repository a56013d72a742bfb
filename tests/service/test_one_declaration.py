"""One declaration of each thing: training parameters (TrainConfig → CLI flags and the API
body), one split policy (`ner train` and a training job give the same metrics), one error
vocabulary (a database or object store that is down is a 503 with Retry-After, never a
500), and one enum of status names (the OpenAPI enums)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from cli.main import build_parser
from cli.main import main as ner
from shared.db import Dataset, Job, session_scope
from shared.ner.config import TrainConfig
from shared.services import jobs
from shared.services.context import Services
from shared.services.datasets import create_dataset
from shared.services.execution import run_job
from shared.services.training import run_training
from shared.settings import Settings
from shared.states import JobStatus

pytestmark = pytest.mark.services


def test_every_training_parameter_is_a_flag_and_an_api_field(service_settings) -> None:
    fields = set(TrainConfig.model_fields)
    train = build_parser()._subparsers._group_actions[0].choices["train"]  # type: ignore[union-attr]
    flags = {a.dest for a in train._actions}
    assert fields <= flags
    schema = create_app(service_settings).openapi()["components"]["schemas"]["TrainJobCreate"]
    assert fields <= set(schema["properties"])
    # Defaults and bounds come from the one declaration.
    assert schema["properties"]["epochs"]["default"] == TrainConfig().epochs
    assert schema["properties"]["epochs"]["minimum"] == 1
    assert schema["properties"]["seed"]["default"] == TrainConfig().seed


def test_status_names_are_one_enum_in_openapi(service_settings) -> None:
    schemas = create_app(service_settings).openapi()["components"]["schemas"]
    assert set(schemas["JobStatus"]["enum"]) == {s.value for s in JobStatus}


@pytest.fixture(scope="module")
def ctx(service_settings: Settings, tiny_base_model: Path) -> Iterator[Services]:
    built = Services.from_settings(service_settings)
    yield built
    built.close()


def test_cli_and_training_job_give_the_same_metrics(
    ctx: Services, train_csv: Path, tiny_base_model: Path, tmp_path: Path, capsys
) -> None:
    """Same data (validation given), options and seed: the same scores both ways."""
    options = {"epochs": 2, "learning_rate": 5e-3, "seed": 3, "batch_size": 8}
    argv = ["train", "--train", str(train_csv), "--validation", str(train_csv), "--quiet"]
    argv += ["--base-model", str(tiny_base_model), "--out", str(tmp_path / "cli-model")]
    for name, value in options.items():
        argv += [f"--{name.replace('_', '-')}", str(value)]
    assert ner(argv) == 0
    cli_metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["metrics"]

    with session_scope(ctx.sessions) as s, open(train_csv, "rb") as fh:
        dataset_id = create_dataset(
            s, ctx.store, fh, filename="p.csv", name="p", skip_invalid=False, max_bytes=10**6
        ).id
    params = {**options, "base_model": str(tiny_base_model), "validation_dataset_id": dataset_id}
    with session_scope(ctx.sessions) as s:
        job_id = jobs.create_train_job(s, ctx.outbox, dataset_id, params).id
    assert run_job(ctx, job_id, run_training) == "done"
    with session_scope(ctx.sessions) as s:
        job = s.get(Job, job_id)
        assert job.status == "succeeded", job.error
        job_metrics = {k: v for k, v in job.metrics.items() if k != "validation"}
    for key in ("f1", "precision", "recall", "f1_strict", "token_accuracy", "per_type"):
        assert job_metrics[key] == cli_metrics[key], key
    assert job_metrics["sentences"] == cli_metrics["sentences"]


def test_database_down_is_503_with_retry_after(service_settings: Settings) -> None:
    down = service_settings.model_copy(
        update={"database_url": "postgresql+psycopg://ner:ner@127.0.0.1:1/ner"}
    )
    with TestClient(create_app(down), raise_server_exceptions=False) as c:
        for method, path in (("GET", "/jobs"), ("GET", "/models"), ("GET", "/jobs/x")):
            r = c.request(method, path)
            assert r.status_code == 503, (path, r.text)
            assert r.headers["Retry-After"].isdigit()
            assert "unavailable" in r.json()["detail"]


def test_object_store_down_on_upload_is_503_and_leaves_no_row(
    service_settings: Settings, sessions
) -> None:
    down = service_settings.model_copy(update={"s3_endpoint_url": "http://127.0.0.1:1"})
    with session_scope(sessions) as s:
        before = s.query(Dataset).count()
    with TestClient(create_app(down), raise_server_exceptions=False) as c:
        good = b"text,labels\nAngela lives in Berlin,B-PER O O B-LOC\n"
        r = c.post("/datasets", files={"file": ("d.csv", io.BytesIO(good), "text/csv")})
        assert r.status_code == 503, r.text
        assert "Retry-After" in r.headers
    with session_scope(sessions) as s:
        assert s.query(Dataset).count() == before
