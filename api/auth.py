"""Who is calling, decided before anything reads the request body.

Starlette's `AuthenticationMiddleware` (a pure ASGI middleware: it sees the headers and
never touches `receive`) runs `KeyBackend` first thing for every request. For a protected
path a missing or unknown key is answered 401 at once, so an upload without a key is
refused before a byte of it is read; a known key's scopes go into the ASGI scope
(`request.auth.scopes`), and each route declares the scope it needs (`api.deps.requires`),
403 without it. Public paths (health, docs, the web page) are served to anyone; a valid key
sent there still counts (an admin key gets /readyz's details).
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.security.utils import get_authorization_scheme_param
from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    BaseUser,
    UnauthenticatedUser,
)
from starlette.concurrency import run_in_threadpool
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection
from starlette.responses import Response

from api.errors import RETRY_AFTER_SECONDS
from api.metrics import REQUESTS
from shared.errors import Unavailable
from shared.services.keys import MISS, Caller, KeyResolver

PUBLIC_PATHS = frozenset(
    {"/", "/healthz", "/readyz", "/docs", "/docs/oauth2-redirect", "/openapi.json", "/redoc"}
)
PUBLIC_PREFIXES = ("/static/",)
REALM = 'Bearer realm="ner"'


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


class KeyUser(BaseUser):
    def __init__(self, caller: Caller) -> None:
        self.caller = caller

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.caller.name


class MissingKey(AuthenticationError):
    status, challenge = 401, REALM
    detail = "this route needs an API key: send 'Authorization: Bearer <key>'"


class InvalidKey(AuthenticationError):
    status, challenge = 401, f'{REALM}, error="invalid_token"'
    # Says nothing of why (unknown, revoked, malformed): that would help a guesser.
    detail = "the API key is not valid: send 'Authorization: Bearer <key>' with a live key"


class KeysUnavailable(AuthenticationError):
    status, challenge = 503, ""
    # Worded as api/errors.py words every outage.
    detail = (
        "a server this service needs is unavailable; try again later "
        "(whether the API key is valid cannot be checked: the database does not answer)"
    )


def bearer_token(conn: HTTPConnection) -> str | None:
    scheme, token = get_authorization_scheme_param(conn.headers.get("authorization"))
    return token if scheme.lower() == "bearer" and token else None


class KeyBackend(AuthenticationBackend):
    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser]:
        resolver: KeyResolver = conn.app.state.ner.keys
        token = bearer_token(conn)
        public = is_public(conn.scope["path"])
        caller = resolver.peek(token)  # from memory: most requests stop here
        if caller is MISS:
            try:
                caller = await run_in_threadpool(resolver.authenticate, token)
            except Unavailable as exc:
                if not public:
                    raise KeysUnavailable() from exc
                caller = None
        if isinstance(caller, Caller):
            return AuthCredentials([s.value for s in caller.scopes]), KeyUser(caller)
        if public:
            return AuthCredentials(), UnauthenticatedUser()
        raise MissingKey() if token is None else InvalidKey()


def _refuse(conn: HTTPConnection, exc: AuthenticationError) -> Response:
    status = getattr(exc, "status", 401)
    headers = {}
    challenge = getattr(exc, "challenge", "")
    if challenge:
        headers["WWW-Authenticate"] = challenge
    if status == 503:
        headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    if conn.headers.get("content-length", "0") != "0" or "transfer-encoding" in conn.headers:
        # The body stays unread; closing the connection keeps the server from reading it
        # to reuse the connection.
        headers["Connection"] = "close"
    # Counted here: the metrics middleware inside never sees a refused request.
    REQUESTS.labels(conn.scope.get("method", ""), "refused", str(status)).inc()
    detail = getattr(exc, "detail", "not authenticated")
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def install_authentication(app: FastAPI) -> None:
    """Add it last: the outermost middleware, so it runs before any other one."""
    app.add_middleware(AuthenticationMiddleware, backend=KeyBackend(), on_error=_refuse)
