"""The `static:` route kind (SPEC 3.16): an answer written in the routes file,
with no upstream (mock endpoints, maintenance pages, deprecations).

    static:
      status: 410                  # default 200
      headers: {Sunset: "Wed, 31 Dec 2026 23:59:59 GMT"}
      body: {error: gone}          # a JSON value, or a string
      content_type: ...            # default: application/json for JSON, text/plain for a string

The body is encoded once, when the file loads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.routes.keys import STRING, Key, MapOf, Section, Value, var_or
from gateway.routes.reader import NOT_FORWARDABLE, Reader
from gateway.routes.source import Node
from gateway.routes.vocabulary import KindReader, RouteContext

__all__ = ["STATIC", "Static"]

_TEXT = "text/plain; charset=utf-8"
_JSON = "application/json"
# Set from the body and by the gateway: never written by hand.
_OWNED = NOT_FORWARDABLE | {"content-type", "content-encoding"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Static:
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    content_type: str = _JSON
    json: bool = True  # the body is JSON (OpenAPI says so)


SECTION = Section(
    (
        Key(
            name="status",
            value=Value(var_or({"type": "integer", "minimum": 200, "maximum": 599}), 410, "gone"),
        ),
        Key(name="headers", value=MapOf(STRING, "Sunset")),
        Key(name="body", value=Value({}, {"error": "gone"}, None)),  # anything JSON can hold
        Key(name="content_type", value=STRING, example="application/problem+json"),
    )
)


def _read(r: Reader, fields: Mapping[str, Node], ctx: RouteContext) -> Static | None:
    where = f"{ctx.where}: static"
    node = fields["static"]
    found = SECTION.fields(r, node, where)
    if found is None:
        return None
    status = 200
    if "status" in found:
        status = r.integer(found["status"], f"{where}.status", minimum=200) or 0
        if status and status > 599:
            r.error(found["status"], f"{where}.status", f"must be at most 599, got {status}")
            status = 0
    headers = _read_headers(r, found.get("headers"), f"{where}.headers")
    body_value: Any = found["body"].plain() if "body" in found else None
    is_text = isinstance(body_value, str)
    body = (
        b""
        if "body" not in found
        else (body_value.encode() if is_text else orjson.dumps(body_value))
    )
    content_type = _TEXT if is_text else _JSON
    if "content_type" in found:
        written = r.string(found["content_type"], f"{where}.content_type")
        if written is not None:
            content_type = (
                r.header_value(found["content_type"], f"{where}.content_type", written)
                or content_type
            )
    if body and status in (204, 304):
        r.error(found["body"], f"{where}.body", f"a {status} answer has no body")
    if not status or headers is None:
        return None
    return Static(
        status=status, headers=headers, body=body, content_type=content_type, json=not is_text
    )


def _read_headers(r: Reader, node: Node | None, where: str) -> tuple[tuple[str, str], ...] | None:
    if node is None:
        return ()
    written = r.string_map(node, where)
    if written is None or not isinstance(node.value, dict):
        return None
    out = []
    for name, value in written.items():
        key_node = Node(name, node.key_lines.get(name, node.line))
        lower = r.header_name(key_node, f"{where}.{name}")
        checked = r.header_value(node.value[name], f"{where}.{name}", value)
        if lower is None or checked is None:
            return None
        if lower in _OWNED:
            r.error(key_node, f"{where}.{name}", "set by the gateway (content_type sets the type)")
            return None
        out.append((name, checked))
    return tuple(out)


STATIC = KindReader(
    name="static",
    keys=(Key(name="static", value=SECTION, wrong="not this"),),
    methods=("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"),
    read=_read,
)
