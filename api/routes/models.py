"""The model registry."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response

from api.deps import ServicesDep, SessionDep, requires
from api.schemas import RESOURCE_ERRORS, IdPath, ModelList, ModelPublic
from shared.db import Model
from shared.services import registry
from shared.states import Scope

router = APIRouter(prefix="/models", tags=["models"], responses=RESOURCE_ERRORS)


@router.get("", response_model=ModelList)
def list_models(
    session: SessionDep,
    limit: int = Query(100, ge=1, le=500),
    offset: int = Query(0, ge=0, le=1_000_000_000),
) -> dict:
    """Every registered version, newest first."""
    items, total = registry.list_models(session, limit, offset)
    return {"items": items, "total": total}


@router.get("/{version}", response_model=ModelPublic)
def get_model(version: IdPath, session: SessionDep) -> Model:
    """One version with its metrics and stage."""
    return registry.get_model(session, version)


@router.get(
    "/{version}/evaluation",
    responses={200: {"description": "shared/ner/analysis.py `Analysis`", "model": dict}},
)
def get_model_evaluation(version: IdPath, session: SessionDep, services: ServicesDep) -> Response:
    """The error analysis of a version on its test data: per-type scores, confusion matrix
    with missed/spurious, error counts by kind, example sentences."""
    body = registry.evaluation_json(session, services.store, version)
    return Response(body, media_type="application/json")


@router.post("/{version}/promote", response_model=ModelPublic, dependencies=[requires(Scope.admin)])
def promote_model(version: IdPath, session: SessionDep) -> Model:
    """Put a version in production; /predict serves it within seconds, with no restart."""
    return registry.promote(session, version)
