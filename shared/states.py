"""The names of job types, job statuses and model stages: one enum each, used by the
database models, the API's schemas (their OpenAPI enums) and the code."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class JobType(StrEnum):
    train = "train"
    predict = "predict"


class JobStatus(StrEnum):
    """queued → running → succeeded | failed | cancelled; a cancel turns queued into cancelled
    at once and running into cancelling, which the worker's loop turns into cancelled."""

    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelling = "cancelling"
    cancelled = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset({JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled})
# A worker holds the job: its heartbeat must move.
ACTIVE_STATUSES = frozenset({JobStatus.running, JobStatus.cancelling})


class ModelStage(StrEnum):
    production = "production"
    candidate = "candidate"
    archived = "archived"


class Scope(StrEnum):
    """What an API key may do. `admin` implies the other two (see `expand_scopes`)."""

    predict = "predict"  # POST /predict
    train = "train"  # datasets and jobs
    admin = "admin"  # promotion, metrics, the readiness details


ALL_SCOPES = frozenset(Scope)


def expand_scopes(scopes: Iterable[str]) -> frozenset[Scope]:
    """The scopes a key holds, with what `admin` implies; unknown names are dropped."""
    held = frozenset(Scope(s) for s in scopes if s in Scope.__members__)
    return ALL_SCOPES if Scope.admin in held else held
