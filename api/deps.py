"""Route dependencies: app state, the request's database session, API-key check."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from api.errors import ApiError
from api.state import AppState
from shared.db import session_scope


class Unauthorized(ApiError):
    status_code = 401


def get_state(request: Request) -> AppState:
    return request.app.state.ner


StateDep = Annotated[AppState, Depends(get_state)]


def get_session(state: StateDep) -> Iterator[Session]:
    """The request's one transaction: committed when the route returns, rolled back when it
    raises. Inner code only flushes (routes that enqueue commit first, then send)."""
    with session_scope(state.sessions) as session:
        yield session


# scope="function": the commit happens before the response is sent, so a client that
# reads right after a 2xx sees what it wrote.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]

_bearer = HTTPBearer(auto_error=False)


def require_api_key(
    state: StateDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    keys = state.settings.api_key_list
    if not keys:
        return
    given = credentials.credentials if credentials is not None else ""
    # Compare against every key in constant time; no early exit that leaks which matched.
    if not any(secrets.compare_digest(given.encode(), k.encode()) for k in keys):
        raise Unauthorized("missing or invalid API key: send 'Authorization: Bearer <key>'")
