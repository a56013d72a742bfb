"""Database layer: SQLAlchemy 2 models, engine and session factories.

Engines are built by `make_engine` from settings, by the API in its lifespan and by the
worker at process start, never at import.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    create_engine,
    event,
    false,
    text,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

from shared.states import JobStatus, JobType, ModelStage

# Constraint names fixed by convention, so Alembic migrations name them the same way on
# every database.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


StrEnumT = TypeVar("StrEnumT", bound=StrEnum)


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every database (SQLite hands back naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def _enum_column(enum: type[StrEnumT]) -> Enum:
    return Enum(
        enum,
        native_enum=False,
        create_constraint=False,
        length=16,
        values_callable=lambda members: [m.value for m in members],
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime,
        # Stored as their values in plain VARCHAR columns (no database enum type to migrate).
        JobType: _enum_column(JobType),
        JobStatus: _enum_column(JobStatus),
        ModelStage: _enum_column(ModelStage),
    }


class Dataset(Base):
    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255))
    format: Mapped[str] = mapped_column(String(16))
    object_key: Mapped[str] = mapped_column(String(512))
    sentences: Mapped[int] = mapped_column(Integer)
    tokens: Mapped[int] = mapped_column(Integer)
    labels: Mapped[dict[str, int]] = mapped_column(JSON)
    warnings: Mapped[list[str]] = mapped_column(JSON)
    # Uploaded with skip_invalid: the worker reads the stored file the same way.
    skip_invalid: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_type_status", "type", "status"),
        # Migration 0004 also adds a trigger: a final status never changes again.
        CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed', 'cancelling', 'cancelled')",
            name="status_known",
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    type: Mapped[JobType] = mapped_column()
    status: Mapped[JobStatus] = mapped_column(default=JobStatus.queued, index=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    stage: Mapped[str] = mapped_column(String(64), default="queued")
    eta_seconds: Mapped[float | None] = mapped_column(Float)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # A training's curves: {"loss": [{step, epoch, loss}], "validation": [{epoch, f1, ...}]}.
    history: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    # For a training job: the version it produced; for a predict job: the version used.
    model_version: Mapped[str | None] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    dataset_id: Mapped[str | None] = mapped_column(ForeignKey("datasets.id"))
    document_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    # Written with every progress update: a running job with an old heartbeat lost its worker.
    heartbeat_at: Mapped[datetime | None] = mapped_column()
    # Bumped by each claim: the fencing token a worker's writes carry, and the count of
    # deliveries (a job that keeps killing its workers fails after `max_job_attempts`).
    attempt: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))


class JobDocument(Base):
    """One input document of a bulk predict job."""

    __tablename__ = "job_documents"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    doc_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[str] = mapped_column(String(255))
    text: Mapped[str] = mapped_column(Text)


class JobResult(Base):
    """Entities for one document; the (job_id, doc_index) key makes every write idempotent."""

    __tablename__ = "job_results"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    doc_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    entities: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OutboxMessage(Base):
    """The intent to send a job's task message, committed in the same transaction as the
    job (a transactional outbox): sent after the commit, and again by the sweeper while the
    job waits, so a crash between commit and send or a broker that lost its messages never
    leaves a job queued for ever. One row per job."""

    __tablename__ = "outbox"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    task: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # None: not handed to the broker since the intent was (re)written.
    sent_at: Mapped[datetime | None] = mapped_column()
    send_count: Mapped[int] = mapped_column(Integer, default=0)
    # When the sweeper may send it (again): a grace period after the commit, then a backoff.
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class Model(Base):
    __tablename__ = "models"
    __table_args__ = (
        # At most one model in production, enforced by the database itself so two
        # trainings finishing together cannot both promote.
        Index(
            "uq_models_one_production",
            "stage",
            unique=True,
            postgresql_where=text("stage = 'production'"),
            sqlite_where=text("stage = 'production'"),
        ),
    )

    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id"))
    base_model: Mapped[str] = mapped_column(String(512))
    labels: Mapped[list[str]] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    # onnx/serving.json of the model's files: the ONNX variants' parity figures and which
    # one serves on a CPU (None: saved without an export, served by PyTorch).
    serving: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    stage: Mapped[ModelStage] = mapped_column(default=ModelStage.candidate)
    # Object key of the sha256 manifest of the model's files, and the manifest's own
    # sha256, so a changed manifest is caught as well as a changed file.
    manifest_key: Mapped[str] = mapped_column(String(512))
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    # Identifies the test data the metrics were computed on (promotion compares F1 only
    # on the same test data).
    test_data_key: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    promoted_at: Mapped[datetime | None] = mapped_column()


class ApiKey(Base):
    """An API key, held as the SHA-256 of its token (shared/services/keys.py says why that
    is enough): the token itself is shown once, by `ner keys create`, and stored nowhere."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255))
    # The token's first characters, not secret: shown by `ner keys list` so a key can be
    # recognised, and the index a presented token is looked up by.
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()


def make_engine(database_url: str) -> Engine:
    # hide_parameters: a database error's message carries its statement's bound values
    # (document texts, dataset rows, key hashes) into every log line and traceback that
    # prints it; with this the statement is shown, the values are not.
    if database_url.startswith("sqlite"):
        path = make_url(database_url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # The API and the worker process share one SQLite file: WAL lets readers go on
        # while a writer commits, and the busy timeout makes writers wait, not fail.
        engine = create_engine(
            database_url,
            connect_args={"check_same_thread": False, "timeout": 30},
            hide_parameters=True,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(
        database_url, pool_pre_ping=True, pool_size=10, max_overflow=10, hide_parameters=True
    )


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit when the block ends, roll back when it raises."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
