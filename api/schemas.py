"""Request and response bodies (CONTRACT §4)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

JobType = Literal["train", "predict"]
JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelling", "cancelled"]


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


class TrainJobCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset_id: str
    validation_dataset_id: str | None = None
    test_dataset_id: str | None = None
    base_model: str | None = Field(default=None, description="Hugging Face name or directory")
    epochs: int | None = Field(default=None, ge=1, le=1000)
    seed: int | None = None
    learning_rate: float | None = Field(default=None, gt=0, le=1)
    batch_size: int | None = Field(default=None, ge=1, le=1024)
    max_sentences: int | None = Field(default=None, ge=1)
    patience: int | None = Field(
        default=None, ge=1, le=1000, description="epochs without a better validation F1"
    )


class DocumentIn(BaseModel):
    id: str | int | None = None
    text: str


class PredictJobCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    documents: list[DocumentIn] = Field(min_length=1)
    model_version: str | None = None


class JobPublic(BaseModel):
    id: str
    type: JobType
    status: JobStatus
    progress: float
    stage: str
    eta_seconds: float | None = None
    metrics: dict[str, Any] | None = None
    model_version: str | None = None
    error: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    dataset_id: str | None = None
    documents: int | None = None
    params: dict[str, Any] = {}
    history: dict[str, Any] | None = Field(
        default=None,
        description='training curves: {"loss": [{step, epoch, loss}], '
        '"validation": [{epoch, f1, precision, recall}]}; null until training reports',
    )


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
    version: str
    job_id: str | None
    base_model: str
    labels: list[str]
    metrics: dict[str, Any]
    stage: Literal["production", "candidate", "archived"]
    created_at: datetime
    promoted_at: datetime | None = None


class ModelList(BaseModel):
    items: list[ModelPublic]
    total: int
