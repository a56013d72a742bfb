"""Route dependencies: app state, the request's database session, the scope a route needs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from api.state import AppState
from shared.db import session_scope
from shared.errors import Forbidden
from shared.services.context import Services
from shared.settings import Settings
from shared.states import Scope

# Dependencies that only read memory are `async def`: FastAPI runs a plain `def` one in a
# worker thread, a hand-off that cost a quick /predict about half a millisecond each.


async def get_state(request: Request) -> AppState:
    return request.app.state.ner


StateDep = Annotated[AppState, Depends(get_state)]


async def get_services(state: StateDep) -> Services:
    return state.services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_settings(services: ServicesDep) -> Settings:
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

# Read again here only so OpenAPI (/docs) shows the Bearer scheme and an Authorize button;
# the key was checked by the authentication middleware (api/auth.py) before the route ran.
_bearer = HTTPBearer(auto_error=False, description="an API key: `ner keys create`")


def requires(*scopes: Scope) -> Any:
    """A dependency: the caller's key holds one of `scopes` (admin holds them all), else 403.
    With no keys configured anywhere, every caller holds every scope."""
    wanted = {s.value for s in scopes}

    async def check(
        request: Request,
        _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    ) -> None:
        if wanted.isdisjoint(request.auth.scopes):
            raise Forbidden(
                f"this API key lacks the scope this route needs: {' or '.join(sorted(wanted))}"
            )

    return Depends(check)


def is_admin(request: Request) -> bool:
    return Scope.admin.value in request.auth.scopes
