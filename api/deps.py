"""Route dependencies: app state, the request's database session, API-key check."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from api.state import AppState
from shared.db import session_scope
from shared.errors import Unauthorized
from shared.services.context import Services
from shared.settings import Settings


def get_state(request: Request) -> AppState:
    return request.app.state.ner


StateDep = Annotated[AppState, Depends(get_state)]


def get_services(state: StateDep) -> Services:
    return state.services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_settings(services: ServicesDep) -> Settings:
    return services.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_session(services: ServicesDep) -> Iterator[Session]:
    """The request's one transaction: committed when the route returns, rolled back when it
    raises. Inner code only flushes; the outbox sends a new job's message after the commit."""
    with session_scope(services.sessions) as session:
        yield session


# scope="function": the commit happens before the response is sent, so a client that
# reads right after a 2xx sees what it wrote.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]

_bearer = HTTPBearer(auto_error=False)


def require_api_key(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    keys = settings.api_key_list
    if not keys:
        return
    given = credentials.credentials if credentials is not None else ""
    # Compare against every key in constant time; no early exit that leaks which matched.
    if not any(secrets.compare_digest(given.encode(), k.encode()) for k in keys):
        raise Unauthorized("missing or invalid API key: send 'Authorization: Bearer <key>'")
