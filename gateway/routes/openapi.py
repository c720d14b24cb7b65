"""The routed API as an OpenAPI 3.1 document (SPEC 3.15): one operation per
route and method (HEAD, which every GET route serves, folded into GET), built
from the loaded routes. WebSocket routes have no HTTP operation to describe:
they are listed in the document's description and under
`x-gateway-websockets` instead.

Each operation says who may call it (the providers' header or query
parameter, the scopes), what the 200 holds (an aggregate route's keys, the
fields `allow` keeps), the gateway's headers (RateLimit-*, X-Gateway-Completed,
X-Cache), and every status it can answer: the gateway's own refusals and, on
aggregate routes, a required backend's own 4xx (404 and the rest), which pass
through as they came.

`manage.py export_openapi [ROUTES_FILE]` prints it; the client port serves it
at `/_gateway/openapi.json` and an explorer for it at `/_gateway/docs`.
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
    404: "A required backend answered 404 (its other 4xx pass through too)",
    408: "The request body arrived too slowly",
    413: "The request body is larger than the route allows",
    426: "A plain request to a WebSocket route: upgrade to a WebSocket",
    429: "The route's rate limit",
    500: "A hook failed, or the gateway did",
    502: "An upstream failed or answered with an error",
    503: "An upstream's circuit is open, the gateway's memory budget is spent, or too many streams",
    504: "The route's deadline passed",
}
_BACKEND_4XX = "A required backend's own 4xx, passed through as it came"
_COMPLETED = {
    "X-Gateway-Completed": {
        "schema": {"type": "string", "enum": ["true", "false"]},
        "description": "false when an optional backend was left out",
    }
}
_CACHE = {"X-Cache": {"schema": {"type": "string", "enum": ["HIT", "MISS"]}}}
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def openapi_document(table: RouteTable, title: str = "Gateway") -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    websockets: list[dict[str, Any]] = []
    for route in table.routes:
        if isinstance(route.kind, WebSocket):
            websockets.append(_websocket(route, table))
            continue
        item = paths.setdefault(_openapi_path(route), {})
        for method in sorted(route.methods):
            if method == "HEAD" and "GET" in route.methods:
                continue  # HEAD is served wherever GET is: one operation says both
            item[method.lower()] = _operation(route, method, table)
    description = "The routed API, generated from the gateway's routes file."
    if websockets:
        description += (
            "\n\nWebSocket routes (upgrade a GET; a plain GET answers 426):\n\n"
            + "\n".join(
                f"- `{w['path']}` ({w['name']})" + (f": {w['summary']}" if w.get("summary") else "")
                for w in websockets
            )
        )
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1", "description": description},
        "paths": paths,
        "components": {
            "schemas": {"Problem": _problem_schema()},
            "securitySchemes": _security_schemes(table),
        },
    }
    if websockets:
        document["x-gateway-websockets"] = websockets
    return document


def _websocket(route: Route, table: RouteTable) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": route.name, "path": _openapi_path(route)}
    if route.summary:
        entry["summary"] = route.summary
    if route.auth:
        entry["auth"] = [scheme for name in route.auth for scheme in _schemes_of(name, table)]
        entry["scopes"] = sorted(route.scopes)
    assert isinstance(route.kind, WebSocket)
    if route.kind.subprotocols is not None:
        entry["subprotocols"] = list(route.kind.subprotocols)
    return entry


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
    notes = []
    if method == "GET":
        notes.append("HEAD is served too (the same, without the body).")
    if route.auth:
        operation["security"] = [
            {scheme: sorted(route.scopes)}
            for name in route.auth
            for scheme in _schemes_of(name, table)
        ]
        who = " or ".join(_credential_of(name, table) for name in route.auth)
        notes.append(
            f"Needs {who}"
            + (f", with scopes {', '.join(sorted(route.scopes))}." if route.scopes else ".")
        )
    if notes:  # shown as the description when the route has none of its own
        operation["x-gateway-notes"] = " ".join(notes)
        operation.setdefault("description", operation["x-gateway-notes"])
    if method in _BODY_METHODS and _takes_a_body(route):
        operation["requestBody"] = _request_body(route)
    operation["responses"] = _responses(route, method)
    return operation


def _takes_a_body(route: Route) -> bool:
    kind = route.kind
    if isinstance(kind, Aggregate):
        return any(b.method == "POST" for b in kind.backends)
    return isinstance(kind, Proxy)


def _request_body(route: Route) -> dict[str, Any]:
    if isinstance(route.kind, Aggregate):
        return {
            "description": "Sent to every backend whose method is POST",
            "content": {"application/json": {"schema": {}}},
        }
    return {"description": "Passed to the upstream as it came", "content": {"*/*": {"schema": {}}}}


def _credential_of(provider: str, table: RouteTable) -> str:
    config = table.auth[provider]
    if config.type == "jwt":
        where = "Authorization: Bearer <JWT>"
    else:
        where = f"{getattr(config, 'header_display', 'X-API-Key')}: <API key>"
    query = getattr(config, "query_param", None)
    return f"`{where}`" + (f" (or `?{query}=`)" if query else "")


def _answer_schema(route: Route) -> dict[str, Any]:
    """What an aggregate answer holds: each key's body (the fields `allow`
    keeps, when it lists them); unkeyed bodies merged at the top level."""
    assert isinstance(route.kind, Aggregate)
    backends = route.kind.backends
    if len(backends) == 1 and backends[0].key is None:
        return _fields_schema(backends[0].allow, backends[0].rename)
    properties: dict[str, Any] = {}
    for backend in backends:
        if backend.key is None:
            properties.update(_fields_schema(backend.allow, backend.rename).get("properties", {}))
        else:
            properties[backend.key] = _fields_schema(backend.allow, backend.rename)
    return {"type": "object", "properties": properties}


def _fields_schema(
    allow: tuple[tuple[str, ...], ...], rename: tuple[tuple[tuple[str, ...], str], ...]
) -> dict[str, Any]:
    if not allow:
        return {}
    renamed = {path[-1]: new for path, new in rename if len(path) == 1}
    names = sorted({renamed.get(path[0], path[0]) for path in allow})
    return {
        "description": "an object (or a list of them) with these fields",
        "properties": {name: {} for name in names},
    }


def _responses(route: Route, method: str) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": "The answer"}
    headers: dict[str, Any] = {}
    if isinstance(route.kind, Aggregate):
        headers.update(_COMPLETED)
        if route.kind.cache is not None:
            headers.update(_CACHE)
    if method != "HEAD":
        if isinstance(route.kind, Aggregate):
            content: dict[str, Any] = {"application/json": {"schema": _answer_schema(route)}}
            if route.kind.stream:
                content["text/event-stream"] = {"schema": {"type": "string"}}
                content["application/x-ndjson"] = {"schema": {"type": "string"}}
            ok["content"] = content
        elif isinstance(route.kind, Proxy):
            ok["description"] = "The upstream's answer, as it came"
            ok["content"] = {"*/*": {"schema": {}}}
    if route.rate_limit is not None:
        headers.update(_RATE_HEADERS)
    if headers:
        ok["headers"] = headers
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
    if isinstance(route.kind, Aggregate):
        responses["4XX"] = {
            "description": _BACKEND_4XX,
            "content": {"application/problem+json": {"schema": _PROBLEM}},
        }
    elif isinstance(route.kind, Proxy):
        responses["default"] = {"description": "The upstream's answer, whatever its status"}
    return responses


def _statuses(route: Route) -> list[int]:
    statuses = [400, 408, 413, 500, 502, 503, 504]
    if isinstance(route.kind, Aggregate):
        statuses.append(404)
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
