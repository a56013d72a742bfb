"""The model registry."""

from __future__ import annotations

from fastapi import APIRouter, Query

from api.deps import SessionDep
from api.schemas import RESOURCE_ERRORS, IdPath, ModelList, ModelPublic
from shared.db import Model
from shared.services import registry

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


@router.post("/{version}/promote", response_model=ModelPublic)
def promote_model(version: IdPath, session: SessionDep) -> Model:
    """Put a version in production; /predict serves it within seconds, with no restart."""
    return registry.promote(session, version)
