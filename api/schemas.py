"""Request and response bodies (CONTRACT §4): the one HTTP shape of each resource.

Response models read the ORM rows directly (`from_attributes`); the training body is derived
from the core's `TrainConfig`, the one declaration of training parameters.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Form, Path
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.ner.config import TrainConfig
from shared.services.text import text_problem
from shared.states import JobStatus, JobType, ModelStage

# Ids (uuid4 hex) and model versions (date-time-id) are short and plain; anything else is
# refused by the schema before a lookup, so a NUL, a 10 kB string or a path never reaches
# the database (PostgreSQL cannot even compare a text holding NUL).
ID_PATTERN = r"^[A-Za-z0-9_.-]+$"
ID_MAX = 64
Id = Annotated[str, Field(min_length=1, max_length=ID_MAX, pattern=ID_PATTERN)]
# The same bound for an id in the URL path.
IdPath = Annotated[str, Path(min_length=1, max_length=ID_MAX, pattern=ID_PATTERN)]
# Hard ceilings of the schema; the settings' limits (max_text_chars, max_texts_per_request,
# max_bulk_documents) are lower and answer 413 with the figure.
MAX_TEXT_CHARS = 1_000_000
MAX_TEXTS = 10_000
MAX_DOCUMENTS = 1_000_000
MAX_DOCUMENT_ID = 255  # the document_id column's width


def _processable(value: str) -> str:
    problem = text_problem(value, stored=False)
    if problem:
        raise ValueError(problem)
    return value


def _storable(value: str) -> str:
    problem = text_problem(value, stored=True)
    if problem:
        raise ValueError(problem)
    return value


Text = Annotated[str, Field(max_length=MAX_TEXT_CHARS), AfterValidator(_processable)]
StoredText = Annotated[str, Field(max_length=MAX_TEXT_CHARS), AfterValidator(_storable)]
# A dataset's name, sent as a form field.
NameForm = Annotated[str | None, Form(max_length=255), AfterValidator(_storable)]
IdForm = Annotated[str | None, Form(min_length=1, max_length=ID_MAX, pattern=ID_PATTERN)]


class FieldProblem(BaseModel):
    """What is wrong with one field of the request (FastAPI's validation error shape)."""

    loc: list[str | int]
    msg: str
    type: str


class LineProblem(BaseModel):
    """What is wrong with one line of an uploaded file."""

    line: int
    message: str


class ErrorBody(BaseModel):
    """Every error answer: a sentence, or the list of problems found."""

    detail: str | list[FieldProblem | LineProblem]


def error(description: str) -> dict[str, Any]:
    """An OpenAPI `responses` entry for an error status, with the body's schema."""
    return {"model": ErrorBody, "description": description}


# What any operation may answer besides its own outcomes: a body that cannot be parsed or
# breaks the schema, one over the size limit, a dependency that is down.
COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    400: error("the body cannot be parsed (not UTF-8, not JSON, nested too deep)"),
    413: error("the body is over the size limit"),
    422: error("the request breaks the schema, or a file holds invalid records"),
    503: error("a dependency is unavailable, the service is busy, or no model is served yet"),
}
# What an operation on one resource (or that names one) may answer too.
RESOURCE_ERRORS: dict[int | str, dict[str, Any]] = {
    **COMMON_ERRORS,
    404: error("no such dataset, job or model"),
    409: error("the resource is not in a state that allows this"),
}


class Entity(BaseModel):
    start: int
    end: int
    label: str
    text: str
    score: float


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Text | None = None
    texts: list[Text] | None = Field(default=None, max_length=MAX_TEXTS)

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

    dataset_id: Id
    validation_dataset_id: Id | None = None
    test_dataset_id: Id | None = None

    def config(self) -> TrainConfig:
        return TrainConfig.model_validate(self.model_dump(include=set(TrainConfig.model_fields)))


class DocumentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: (
        Annotated[str, Field(max_length=MAX_DOCUMENT_ID), AfterValidator(_storable)]
        | Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
        | None
    ) = None
    text: StoredText


class PredictJobCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    documents: list[DocumentIn] = Field(min_length=1, max_length=MAX_DOCUMENTS)
    model_version: Id | None = None


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
    serving: dict[str, Any] | None = Field(
        default=None,
        description="CPU serving: each ONNX variant's parity on the validation data "
        "(int8, int8-s7, int8-u8, fp32) and `serve`, the one chosen on the CPU that checked "
        "them, or null (PyTorch); a CPU without VNNI/AMX serves int8-s7 (7-bit weights) or "
        "int8-u8 in place of int8 (`/readyz` names what this API serves)",
    )
    stage: ModelStage
    created_at: datetime
    promoted_at: datetime | None = None


class ModelList(BaseModel):
    items: list[ModelPublic]
    total: int
