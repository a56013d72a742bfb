"""One path, one method, two request bodies: a route chosen by the request's content type.

`POST /jobs/predict` takes JSON documents or a multipart JSONL file (CONTRACT §4). Each form
is an ordinary FastAPI route (so FastAPI parses, validates and documents it); this route
class lets the router pass over a route whose `content_type` does not match, and
`merge_alternative_bodies` puts both request bodies FastAPI generated into the one OpenAPI
operation (FastAPI keeps only the last operation of a path and method).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import Match
from starlette.types import Scope

CONTENT_TYPE_KEY = "x-content-type"


class ContentTypeRoute(APIRoute):
    """Matches only requests whose Content-Type starts with the route's `x-content-type`
    (set through `openapi_extra`); a route without one matches any request."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        wanted = (self.openapi_extra or {}).get(CONTENT_TYPE_KEY)
        if match == Match.FULL and wanted:
            headers = dict(scope.get("headers") or [])
            given = headers.get(b"content-type", b"").decode("latin-1").lower()
            if not given.startswith(wanted):
                return Match.NONE, {}
        return match, child_scope


def merge_alternative_bodies(app: FastAPI) -> None:
    """Make `app.openapi()` list every content type's body under its one operation."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            description=app.description,
            routes=app.routes,
        )
        # Routes of included routers come wrapped in contexts that carry their full path.
        for context in iter_route_contexts(app.routes):
            route: Any = context
            if not isinstance(context.original_route, ContentTypeRoute):
                continue
            if not route.include_in_schema:
                continue
            part = get_openapi(title=app.title, version=app.version, routes=[context])
            for method in route.methods:
                operation = part["paths"][route.path_format][method.lower()]
                if "requestBody" not in operation:
                    continue
                target = schema["paths"][route.path_format][method.lower()]
                body = target.setdefault("requestBody", {"required": True, "content": {}})
                body["content"].update(operation["requestBody"]["content"])
                target.pop(CONTENT_TYPE_KEY, None)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(part.get("components", {}).get("schemas", {}))
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
