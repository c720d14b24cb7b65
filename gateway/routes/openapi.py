"""The routed API as an OpenAPI 3.1 document (SPEC 3.15): one operation per
route and method (WebSocket routes aside), built from the loaded routes.

`manage.py export_openapi [PATH]` prints it; the client port serves it at
`/_gateway/openapi.json` (and renders it at `/_gateway/docs`).
"""

from __future__ import annotations

from typing import Any

from gateway.routes.model import Aggregate, Proxy, Route, RouteTable, WebSocket

__all__ = ["openapi_document"]

_PROBLEM = {"$ref": "#/components/schemas/Problem"}
_RATE_HEADERS = {
    "RateLimit-Limit": {"schema": {"type": "integer"}, "description": "tokens per window"},
    "RateLimit-Remaining": {"schema": {"type": "integer"}, "description": "tokens left"},
    "RateLimit-Reset": {"schema": {"type": "integer"}, "description": "seconds to a full bucket"},
}
# Why the gateway itself may answer an error, by status.
_ERRORS = {
    400: "Malformed request: a path or parameter the gateway refuses",
    401: "Missing or invalid credentials",
    403: "A required scope is missing",
    408: "The request body arrived too slowly",
    413: "The request body is larger than the route allows",
    429: "The route's rate limit",
    500: "A hook failed, or the gateway did",
    502: "An upstream failed or answered with an error",
    503: "An upstream's circuit is open, or the gateway's memory budget is spent",
    504: "The route's deadline passed",
}


def openapi_document(table: RouteTable, title: str = "Gateway") -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in table.routes:
        if isinstance(route.kind, WebSocket):
            continue
        item = paths.setdefault(_openapi_path(route), {})
        for method in sorted(route.methods):
            item[method.lower()] = _operation(route, method, table)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": "1",
            "description": "The routed API, generated from the gateway's routes file.",
        },
        "paths": paths,
        "components": {
            "schemas": {"Problem": _problem_schema()},
            "securitySchemes": _security_schemes(table),
        },
    }


def _openapi_path(route: Route) -> str:
    """`{rest:path}` becomes `{rest}` (OpenAPI has no multi-segment parameter)."""
    parts = [s.literal or "" if s.param is None else f"{{{s.param}}}" for s in route.segments]
    return "/" + "/".join(parts)


def _operation(route: Route, method: str, table: RouteTable) -> dict[str, Any]:
    operation: dict[str, Any] = {"operationId": f"{route.name}-{method.lower()}"}
    if route.summary:
        operation["summary"] = route.summary
    if route.description:
        operation["description"] = route.description
    if route.tags:
        operation["tags"] = list(route.tags)
    parameters = [
        {
            "name": s.param,
            "in": "path",
            "required": True,
            "schema": {"type": "string"},
            **({"description": "the rest of the path; may contain /"} if s.is_path else {}),
        }
        for s in route.segments
        if s.param is not None
    ]
    if parameters:
        operation["parameters"] = parameters
    if route.auth:
        operation["security"] = [
            {scheme: list(route.scopes)}
            for name in route.auth
            for scheme in _schemes_of(name, table)
        ]
    operation["responses"] = _responses(route, method)
    return operation


def _responses(route: Route, method: str) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": "The answer"}
    if method != "HEAD":
        if isinstance(route.kind, Aggregate):
            content: dict[str, Any] = {"application/json": {"schema": {}}}
            if route.kind.stream:
                content["text/event-stream"] = {"schema": {"type": "string"}}
                content["application/x-ndjson"] = {"schema": {"type": "string"}}
            ok["content"] = content
        elif isinstance(route.kind, Proxy):
            ok["description"] = "The upstream's answer, as it came"
            ok["content"] = {"*/*": {"schema": {}}}
    if route.rate_limit is not None:
        ok["headers"] = dict(_RATE_HEADERS)
    responses: dict[str, Any] = {"200": ok}
    for status in _statuses(route):
        answer: dict[str, Any] = {
            "description": _ERRORS[status],
            "content": {"application/problem+json": {"schema": _PROBLEM}},
        }
        if status == 429:
            answer["headers"] = {
                **_RATE_HEADERS,
                "Retry-After": {"schema": {"type": "integer"}, "description": "seconds"},
            }
        responses[str(status)] = answer
    return responses


def _statuses(route: Route) -> list[int]:
    statuses = [400, 408, 413, 500, 502, 503, 504]
    if route.auth:
        statuses.append(401)
    if route.scopes:
        statuses.append(403)
    if route.rate_limit is not None:
        statuses.append(429)
    return sorted(statuses)


def _schemes_of(provider: str, table: RouteTable) -> list[str]:
    config = table.auth[provider]
    schemes = [provider]
    if getattr(config, "query_param", None):
        schemes.append(f"{provider}-query")
    return schemes


def _security_schemes(table: RouteTable) -> dict[str, Any]:
    schemes: dict[str, Any] = {}
    for name, config in table.auth.items():
        if config.type == "jwt":
            schemes[name] = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
        else:
            header = getattr(config, "header_display", "X-API-Key")
            schemes[name] = {"type": "apiKey", "in": "header", "name": header}
        query = getattr(config, "query_param", None)
        if query:
            schemes[f"{name}-query"] = {"type": "apiKey", "in": "query", "name": query}
    return schemes


def _problem_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "RFC 9457 problem details",
        "required": ["type", "title", "status", "detail", "request_id"],
        "properties": {
            "type": {"type": "string", "description": "urn:gateway:problem:<slug>"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "request_id": {"type": "string"},
            "route": {"type": "string"},
            "backend": {"type": "string"},
        },
    }
