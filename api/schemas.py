"""Request and response bodies (CONTRACT §4): the one HTTP shape of each resource.

Response models read the ORM rows directly (`from_attributes`); the training body is derived
from the core's `TrainConfig`, the one declaration of training parameters.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.ner.config import TrainConfig
from shared.states import JobStatus, JobType, ModelStage

# Ids are uuid4 hex strings; anything longer is refused by the schema, before a lookup.
ID = Field(min_length=1, max_length=64)


class Entity(BaseModel):
    start: int
    end: int
    label: str
    text: str
    score: float


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str | None = None
    texts: list[str] | None = None

    @model_validator(mode="after")
    def _one_of(self) -> PredictRequest:
        if (self.text is None) == (self.texts is None):
            raise ValueError('send either "text" or "texts", not both and not neither')
        if self.texts is not None and not self.texts:
            raise ValueError('"texts" must hold at least one text')
        return self


class PredictResult(BaseModel):
    entities: list[Entity]


class PredictOneResponse(BaseModel):
    model_version: str
    entities: list[Entity]


class PredictManyResponse(BaseModel):
    model_version: str
    results: list[PredictResult]


class DatasetPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    format: str
    sentences: int
    tokens: int
    labels: dict[str, int]
    warnings: list[str]
    created_at: datetime


class DatasetList(BaseModel):
    items: list[DatasetPublic]
    total: int


class TrainJobCreate(TrainConfig):
    """The datasets to train on, and every training parameter of `ner train` (TrainConfig):
    defaults, bounds and descriptions come from that one declaration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset_id: str = ID
    validation_dataset_id: str | None = Field(default=None, min_length=1, max_length=64)
    test_dataset_id: str | None = Field(default=None, min_length=1, max_length=64)

    def config(self) -> TrainConfig:
        return TrainConfig.model_validate(self.model_dump(include=set(TrainConfig.model_fields)))


class DocumentIn(BaseModel):
    id: str | int | None = None
    text: str


class PredictJobCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    documents: list[DocumentIn] = Field(min_length=1)
    model_version: str | None = None


class JobPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True, populate_by_name=True)

    id: str
    type: JobType
    status: JobStatus
    progress: float
    stage: str
    eta_seconds: float | None = None
    metrics: dict[str, Any] | None = None
    history: dict[str, Any] | None = Field(
        default=None,
        description='a training\'s curves: {"loss": [{step, epoch, loss}], '
        '"validation": [{epoch, f1, precision, recall}]}; null until training reports',
    )
    model_version: str | None = None
    error: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    dataset_id: str | None = None
    documents: int | None = Field(
        default=None, validation_alias="document_count", description="a predict job's documents"
    )
    params: dict[str, Any] = {}
    attempts: int = Field(
        default=0,
        validation_alias="attempt",
        description="how many times a worker started the job (more than one: a worker "
        "died or lost its claim, and the job was taken over)",
    )

    @field_validator("progress")
    @classmethod
    def _round(cls, value: float) -> float:
        return round(value, 4)

    @field_validator("params", mode="before")
    @classmethod
    def _params(cls, value: dict[str, Any] | None) -> dict[str, Any]:
        return value or {}


class JobList(BaseModel):
    items: list[JobPublic]
    total: int


class ResultItem(BaseModel):
    index: int
    document_id: str
    entities: list[Entity]


class ResultList(BaseModel):
    items: list[ResultItem]
    total: int


class ModelPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: str
    job_id: str | None
    base_model: str
    labels: list[str]
    metrics: dict[str, Any]
    stage: ModelStage
    created_at: datetime
    promoted_at: datetime | None = None


class ModelList(BaseModel):
    items: list[ModelPublic]
    total: int
