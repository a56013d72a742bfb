"""Settings: NER_ variables, .env, and the embedded defaults of `ner serve` (CONTRACT §5)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.queue import broker_transport_options, make_celery
from shared.settings import Settings


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in (
        "DATABASE_URL",
        "BROKER_URL",
        "STORAGE_URL",
        "S3_ENDPOINT_URL",
        "API_KEYS",
        "BASE_MODEL",
        "DATA_DIR",
    ):
        monkeypatch.delenv(f"NER_{name}", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_embedded_defaults_live_under_data_dir(clean_env: Path) -> None:
    s = Settings()
    var = (clean_env / "var").resolve()
    assert s.database_url == f"sqlite:///{var / 'ner.sqlite3'}"
    assert s.broker_url == "filesystem://" and s.is_embedded_broker
    assert s.storage_url == str(var / "objects")
    assert s.api_key_list == [] and s.base_model is None
    options = broker_transport_options(s)
    assert options["data_folder_in"] == options["data_folder_out"]
    assert Path(str(options["data_folder_in"])).is_dir()


def test_environment_and_dotenv(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (clean_env / ".env").write_text("NER_API_KEYS=one, two ,\nNER_MAX_TEXT_CHARS=50\n")
    monkeypatch.setenv("NER_BROKER_URL", "redis://example:6379/0")
    monkeypatch.setenv("NER_BROKER_VISIBILITY_TIMEOUT", "7200")
    s = Settings()
    assert s.api_key_list == ["one", "two"]
    assert s.max_text_chars == 50
    assert not s.is_embedded_broker
    app = make_celery(s)
    assert app.conf.broker_transport_options == {"visibility_timeout": 7200}
    assert app.conf.task_acks_late and app.conf.task_reject_on_worker_lost
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.task_routes["ner.train"] == {"queue": "training"}
    assert app.conf.task_routes["ner.predict_bulk"] == {"queue": "inference"}
