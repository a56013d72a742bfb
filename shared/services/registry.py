"""Model registry: versions and the promotion rule (CONTRACT §4).

A finished training goes to production by itself only when no model is in production or
when its test F1 beats the production model's on the same test data; otherwise it stays
a candidate. `POST /models/{version}/promote` promotes any version by hand.

Promotion is atomic: every decision that may change the production model takes the
registry's lock first (a transaction-scoped advisory lock on PostgreSQL; SQLite serialises
its writers anyway), so two trainings finishing together leave exactly one production
model, the better one, and two promotes at once both succeed, the later one winning.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.db import Job, Model, utcnow
from shared.errors import NotFound
from shared.services.models import ModelRef
from shared.states import ModelStage
from shared.storage import ObjectNotFound, ObjectStore

# Any fixed number: the key of the registry's advisory lock.
REGISTRY_LOCK = 7_315_004


@dataclass(frozen=True)
class Candidate:
    """A trained model ready to register."""

    version: str
    job_id: str | None
    base_model: str
    labels: list[str]
    metrics: dict[str, Any]
    manifest_key: str
    manifest_sha256: str
    test_data_key: str | None
    serving: dict[str, Any] | None = None  # the model's onnx/serving.json


@dataclass(frozen=True)
class Scored:
    """The production model a candidate was compared with, and its F1 on the same data."""

    version: str
    f1: float


def version_for_job(job: Job, attempt: int = 1) -> str:
    """Deterministic per job and attempt, so each attempt writes its model files to a folder
    of its own (a superseded worker never overwrites its successor's); sorts by time."""
    created: datetime = job.created_at
    base = f"{created:%Y%m%d-%H%M%S}-{job.id[:6]}"
    return base if attempt <= 1 else f"{base}-a{attempt}"


def lock(session: Session) -> None:
    """Hold the registry's lock until the transaction ends."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(REGISTRY_LOCK)))


def labels_of_model_dir(model_dir: Path) -> list[str]:
    """Entity types from the saved config's id2label ("B-PER", "I-PER", "O" → ["PER"])."""
    config = json.loads((Path(model_dir) / "config.json").read_text())
    types = {
        str(label).split("-", 1)[1]
        for label in config.get("id2label", {}).values()
        if "-" in str(label)
    }
    return sorted(types)


def get_model(session: Session, version: str) -> Model:
    model = session.get(Model, version)
    if model is None:
        raise NotFound(f"model {version} not found")
    return model


def evaluation_json(session: Session, store: ObjectStore, version: str) -> bytes:
    """The model's error analysis (shared/ner/analysis.py `Analysis`), as the training wrote
    it beside the weights (evaluation.json, listed in the model's manifest)."""
    model = get_model(session, version)
    key = model.manifest_key.rsplit("/", 1)[0] + "/evaluation.json"
    try:
        return store.get_bytes(key)
    except ObjectNotFound:
        raise NotFound(
            f"model {version} has no error analysis (trained before it existed)"
        ) from None


def model_for_job(session: Session, job_id: str) -> Model | None:
    return session.scalars(select(Model).where(Model.job_id == job_id)).first()


def production_model(session: Session) -> Model | None:
    return session.scalars(select(Model).where(Model.stage == ModelStage.production)).first()


def production_ref(session: Session) -> ModelRef | None:
    """The production model's files, read without loading the row: the API's poll."""
    row = session.execute(
        select(Model.version, Model.manifest_key, Model.manifest_sha256).where(
            Model.stage == ModelStage.production
        )
    ).first()
    return ModelRef(row[0], row[1], row[2]) if row else None


def list_models(session: Session, limit: int = 100, offset: int = 0) -> tuple[list[Model], int]:
    total = session.scalar(select(func.count()).select_from(Model)) or 0
    items = session.scalars(
        select(Model).order_by(Model.created_at.desc()).limit(limit).offset(offset)
    ).all()
    return list(items), total


def register(session: Session, candidate: Candidate) -> Model:
    model = Model(**asdict(candidate), stage=ModelStage.candidate)
    session.add(model)
    session.flush()
    return model


def register_and_decide(
    session: Session, candidate: Candidate, against: Scored | None
) -> Model | None:
    """Register the candidate and promote it if it beats production, under the lock.

    `against` is the production model the caller scored (None: there was none). If
    production has changed since, and its stored metrics are not on the candidate's test
    data, nothing is written and None comes back: score the new production model, retry.
    """
    lock(session)
    production = production_model(session)
    if production is None:
        production_f1 = None
    elif against is not None and against.version == production.version:
        production_f1 = against.f1
    elif production.test_data_key == candidate.test_data_key:
        production_f1 = float(production.metrics.get("f1", 0.0))
    else:
        return None
    model = register(session, candidate)
    if beats(float(candidate.metrics.get("f1", 0.0)), production_f1):
        promote(session, model.version)
    return model


def beats(candidate_f1: float, production_f1: float | None) -> bool:
    """The automatic promotion rule: no production model, or a strictly higher test F1."""
    return production_f1 is None or candidate_f1 > production_f1


def promote(session: Session, version: str) -> Model:
    """Make `version` the production model and archive the previous one.

    The old row is archived and flushed before the new one is set, because a unique
    partial index allows one production row at a time.
    """
    lock(session)
    model = session.get(Model, version, with_for_update=True)
    if model is None:
        raise NotFound(f"model {version} not found")
    if model.stage == ModelStage.production:
        return model
    current = session.scalars(
        select(Model).where(Model.stage == ModelStage.production).with_for_update()
    ).first()
    if current is not None:
        current.stage = ModelStage.archived
        session.flush()
    model.stage = ModelStage.production
    model.promoted_at = utcnow()
    session.flush()
    return model
