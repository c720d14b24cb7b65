"""The routed API as an OpenAPI 3.1 document (SPEC 3.15): one operation per
route and method (HEAD, which every GET route serves, folded into GET), built
from the loaded routes. Routes of a kind without HTTP operations (WebSocket
routes) are listed in the document's description and under
`x-gateway-websockets` instead.

This module writes what every route has (its path and parameters, its
summary, the gateway's own refusals, the problem schema); each route's kind
and each policy it uses describe their part (gateway/registry.py hands them
over as `Describer`s): the kind what the 200 holds and which statuses its
upstreams may add, auth who may call (security, 401, 403), the rate limit
its headers and 429.

`manage.py export_openapi [ROUTES_FILE]` prints it; the client port serves it
at `/_gateway/openapi.json` and an explorer for it at `/_gateway/docs`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.routes.model import Route, RouteTable

__all__ = ["PROBLEM", "Describer", "Description", "openapi_document"]

PROBLEM = {"$ref": "#/components/schemas/Problem"}
# Why the gateway itself may answer an error, by status: every route.
_REFUSALS = {
    400: "Malformed request: a path or parameter the gateway refuses",
    408: "The request body arrived too slowly",
    413: "The request body is larger than the route allows",
    500: "A hook failed, or the gateway did",
    502: "An upstream failed or answered with an error",
    503: "An upstream's circuit is open, the gateway's memory budget is spent, or too many streams",
    504: "The route's deadline passed",
}
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(slots=True, eq=False)
class Description:
    """One route's operations while the kind and the policies describe them."""

    route: Route
    table: RouteTable
    ok: dict[str, Any] = field(default_factory=lambda: {"description": "The answer"})
    ok_content: dict[str, Any] = field(default_factory=dict)  # media type -> schema
    ok_headers: dict[str, Any] = field(default_factory=dict)
    refusals: dict[int, dict[str, Any]] = field(default_factory=dict)  # status -> response
    responses: dict[str, Any] = field(default_factory=dict)  # more: "4XX", "default"
    security: list[dict[str, list[str]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    request_body: dict[str, Any] | None = None
    parameters: list[dict[str, Any]] = field(default_factory=list)  # query, header
    param_schemas: dict[str, Any] = field(default_factory=dict)  # path parameter -> schema
    listing: dict[str, Any] = field(default_factory=dict)  # routes without operations

    def refusal(self, status: int, text: str, headers: dict[str, Any] | None = None) -> None:
        """The gateway may answer `status` (problem+json) on this route (a
        status several policies answer gets each one's reason)."""
        answer: dict[str, Any] = self.refusals.setdefault(
            status, {"content": {"application/problem+json": {"schema": PROBLEM}}}
        )
        earlier = answer.get("description")
        answer["description"] = text if earlier is None else f"{earlier}; or: {text}"
        if headers:
            answer.setdefault("headers", {}).update(headers)


class Describer(Protocol):
    """A kind or a policy, as the document needs it."""

    def describes(self, route: Route) -> bool:
        """Is it part of this route (its kind; a policy the route uses)?"""
        ...

    def describe(self, route: Route, description: Description) -> None: ...


type DocumentPart = Callable[[RouteTable, dict[str, Any]], None]


def openapi_document(
    table: RouteTable,
    describers: Sequence[Describer],
    *,
    listed_only: Callable[[Route], bool],
    document_parts: Sequence[DocumentPart] = (),
    title: str = "Gateway",
) -> dict[str, Any]:
    """The document; `listed_only(route)`: the route has no HTTP operations."""
    paths: dict[str, dict[str, Any]] = {}
    listed: list[dict[str, Any]] = []
    for route in table.routes:
        description = Description(route, table)
        for refusal, text in _REFUSALS.items():
            description.refusal(refusal, text)
        for describer in describers:
            if describer.describes(route):
                describer.describe(route, description)
        if listed_only(route):
            listed.append(_listing(route, description))
            continue
        item = paths.setdefault(_openapi_path(route), {})
        for method in sorted(route.methods):
            if method == "HEAD" and "GET" in route.methods:
                continue  # HEAD is served wherever GET is: one operation says both
            item[method.lower()] = _operation(route, method, description)
    info = "The routed API, generated from the gateway's routes file."
    if listed:
        info += "\n\nWebSocket routes (upgrade a GET; a plain GET answers 426):\n\n" + "\n".join(
            f"- `{w['path']}` ({w['name']})" + (f": {w['summary']}" if w.get("summary") else "")
            for w in listed
        )
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1", "description": info},
        "paths": paths,
        "components": {"schemas": {"Problem": _problem_schema()}, "securitySchemes": {}},
    }
    for part in document_parts:
        part(table, document)
    if listed:
        document["x-gateway-websockets"] = listed
    return document


def _listing(route: Route, description: Description) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": route.name, "path": _openapi_path(route)}
    if route.summary:
        entry["summary"] = route.summary
    entry.update(description.listing)
    return entry


def _openapi_path(route: Route) -> str:
    """`{rest:path}` becomes `{rest}` (OpenAPI has no multi-segment parameter)."""
    parts = [s.literal or "" if s.param is None else f"{{{s.param}}}" for s in route.segments]
    return "/" + "/".join(parts)


def _operation(route: Route, method: str, description: Description) -> dict[str, Any]:
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
            "schema": description.param_schemas.get(s.param, {"type": "string"}),
            **({"description": "the rest of the path; may contain /"} if s.is_path else {}),
        }
        for s in route.segments
        if s.param is not None
    ]
    parameters += description.parameters
    if parameters:
        operation["parameters"] = parameters
    notes = []
    if method == "GET":
        notes.append("HEAD is served too (the same, without the body).")
    notes += description.notes
    if description.security:
        operation["security"] = description.security
    if notes:  # shown as the description when the route has none of its own
        operation["x-gateway-notes"] = " ".join(notes)
        operation.setdefault("description", operation["x-gateway-notes"])
    if method in _BODY_METHODS and description.request_body is not None:
        operation["requestBody"] = description.request_body
    operation["responses"] = _responses(method, description)
    return operation


def _responses(method: str, description: Description) -> dict[str, Any]:
    ok = dict(description.ok)
    if method != "HEAD" and description.ok_content:
        ok["content"] = description.ok_content
    if description.ok_headers:
        ok["headers"] = description.ok_headers
    responses: dict[str, Any] = {"200": ok}
    for status in sorted(description.refusals):
        responses[str(status)] = description.refusals[status]
    responses.update(description.responses)
    return responses


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
