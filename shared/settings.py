"""The service's one settings object: environment variables with the NER_ prefix, or .env.

Nothing else in the project reads os.environ. Unset connection settings fall back to the
embedded defaults of `ner serve` (CONTRACT §5): SQLite, kombu's filesystem transport and a
local object directory, all under `data_dir`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MAX_API_WORKERS = 64


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="NER_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    data_dir: Path = Path("var")
    database_url: str = ""
    broker_url: str = ""
    storage_url: str = ""
    s3_endpoint_url: str | None = None
    # None: the core's default (the packaged MiniLM).
    base_model: str | None = None
    # Comma-separated quick-start keys, each with every scope. Keys made with
    # `ner keys create` live in the database as hashes; with neither, no authentication.
    # What `base_model` a training submitted through the API may name, besides the
    # packaged default: names on this comma-separated list, or directories under
    # `models_dir` (shared/services/base_models.py). The CLI is not limited.
    allowed_base_models: str = ""
    models_dir: Path | None = None
    api_keys: str = ""
    # How long the API trusts what it learnt about a key: a revoked key stops working
    # within this many seconds.
    api_key_cache_seconds: float = Field(default=5.0, gt=0, le=300)

    # Caller limits: larger requests get a 413.
    max_upload_bytes: int = Field(default=50 * 1024 * 1024, gt=0)
    max_text_chars: int = Field(default=100_000, gt=0)
    max_texts_per_request: int = Field(default=256, gt=0)
    max_bulk_documents: int = Field(default=100_000, gt=0)
    # What an uploaded .zip may expand to (checked before and while it is decompressed).
    max_unpacked_bytes: int = Field(default=200 * 1024 * 1024, gt=0)
    # A /predict body holds a few texts: bounded far below an upload.
    max_predict_body_bytes: int = Field(default=4 * 1024 * 1024, gt=0)

    # /predict: how long the API waits to gather concurrent requests, and the batch bound.
    # How long a /predict batch waits for more requests once the first arrives, and only
    # while others are already waiting: an idle service runs a request at once, and
    # requests that arrive while a batch runs form the next batch (0: no wait at all).
    predict_batch_window_ms: float = Field(default=2.0, ge=0)
    predict_max_batch: int = Field(default=64, gt=0)
    # Texts that may wait for a batch; past it /predict answers 503 with Retry-After at
    # once. And how long a request may wait for its answer before a 503.
    predict_max_queued_texts: int = Field(default=1024, gt=0)
    predict_timeout_seconds: float = Field(default=30.0, gt=0)
    # API processes (`ner api`), each with its own copy of the production model (~230 MB
    # for the packaged MiniLM). Python runs one thread at a time in a process, so one
    # process keeps about 1.3 of 2 cores busy under concurrent /predict calls; one per
    # core uses them all (docs/benchmarks.md: 16 clients +40 % requests/s on 2 cores).
    api_workers: int = Field(default=1, ge=1, le=MAX_API_WORKERS)
    # How often the API checks the registry for a newly promoted model (must stay well
    # under the 10 s the contract allows for a promotion to reach /predict).
    model_poll_seconds: float = Field(default=2.0, gt=0)

    # Worker: how often progress reaches the job row, and how often a running job
    # checks its row for a cancel request.
    progress_interval_seconds: float = Field(default=2.0, gt=0)
    cancel_check_seconds: float = Field(default=1.0, gt=0)
    # Documents tagged, then stored, together (one progress update each).
    bulk_chunk_size: int = Field(default=256, gt=0)
    # A training job saves its state to the object store at the end of every epoch and at
    # least this often within one; a new attempt resumes from it.
    checkpoint_seconds: float = Field(default=300.0, gt=0)
    # A running job whose heartbeat is older than this is taken as orphaned (its worker
    # died) and re-queued by the sweeper; the heartbeat is written every few seconds.
    stale_job_seconds: float = Field(default=20.0, gt=0)
    # A job whose worker died this many times (each claim is an attempt) ends failed.
    max_job_attempts: int = Field(default=5, ge=1, le=100)
    # The outbox: an intent is left to the after-commit send for this long before the
    # sweeper may send it; a job still queued is re-sent after this, doubling each time.
    outbox_grace_seconds: float = Field(default=10.0, ge=0)
    outbox_resend_seconds: float = Field(default=60.0, gt=0)
    # How often each worker sweeps the outbox and looks for jobs that lost their worker.
    sweep_seconds: float = Field(default=5.0, gt=0)
    # Loaded models a process keeps in memory (the API: the one it serves and the next).
    model_cache_size: int = Field(default=2, ge=1, le=16)
    # Redis redelivers an unacknowledged task after this many seconds: it must exceed
    # the longest job, or a running training is handed to a second worker.
    broker_visibility_timeout: int = Field(default=24 * 3600, gt=0)

    @model_validator(mode="after")
    def _embedded_defaults(self) -> Settings:
        data = self.data_dir
        if not self.database_url:
            self.database_url = f"sqlite:///{(data / 'ner.sqlite3').resolve()}"
        if not self.broker_url:
            self.broker_url = "filesystem://"
        if not self.storage_url:
            self.storage_url = str((data / "objects").resolve())
        return self

    @property
    def api_key_list(self) -> list[str]:
        return [k.strip() for k in self.api_keys.split(",") if k.strip()]

    @property
    def allowed_base_model_list(self) -> list[str]:
        return [m.strip() for m in self.allowed_base_models.split(",") if m.strip()]

    @property
    def broker_folder(self) -> Path:
        """Message folder of the filesystem transport (embedded mode only)."""
        return (self.data_dir / "broker").resolve()

    @property
    def model_cache_dir(self) -> Path:
        """Where downloaded, verified model directories are kept on this machine."""
        return (self.data_dir / "model-cache").resolve()

    @property
    def is_embedded_broker(self) -> bool:
        return self.broker_url.startswith("filesystem://")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
