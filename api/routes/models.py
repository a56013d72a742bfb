"""The model registry."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response

from api.deps import SessionDep, StateDep
from api.errors import NotFound
from api.schemas import ModelList, ModelPublic
from shared import registry
from shared.storage import ObjectNotFound

router = APIRouter(prefix="/models", tags=["models"])


@router.get("", response_model=ModelList)
def list_models(
    session: SessionDep,
    limit: int = Query(100, ge=1, le=500),
    offset: int = Query(0, ge=0),
) -> dict:
    """Every registered version, newest first."""
    items, total = registry.list_models(session, limit, offset)
    return {"items": [registry.model_public(m) for m in items], "total": total}


@router.get("/{version}", response_model=ModelPublic)
def get_model(version: str, session: SessionDep) -> dict:
    """One version with its metrics and stage."""
    model = registry.get_model(session, version)
    if model is None:
        raise NotFound(f"model {version} not found")
    return registry.model_public(model)


@router.get(
    "/{version}/evaluation",
    responses={200: {"description": "shared/ner/analysis.py `Analysis`", "model": dict}},
)
def get_model_evaluation(version: str, session: SessionDep, state: StateDep) -> Response:
    """The error analysis of a version on its test data: per-type scores, confusion matrix
    with missed/spurious, error counts by kind, example sentences."""
    if registry.get_model(session, version) is None:
        raise NotFound(f"model {version} not found")
    try:
        # Stored as the training wrote it (evaluation.json beside the weights): sent as is.
        body = state.store.get_bytes(f"models/{version}/evaluation.json")
    except ObjectNotFound:
        raise NotFound(
            f"model {version} has no error analysis (trained before it existed)"
        ) from None
    return Response(body, media_type="application/json")


@router.post("/{version}/promote", response_model=ModelPublic)
def promote_model(version: str, session: SessionDep) -> dict:
    """Put a version in production; /predict serves it within seconds, with no restart."""
    if registry.get_model(session, version) is None:
        raise NotFound(f"model {version} not found")
    return registry.model_public(registry.promote(session, version))
