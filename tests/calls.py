"""Calls down a route's stack, made without a server: for unit tests of
stages and route kinds (gateway/stack.py)."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from django.http import HttpResponse

from gateway.envelope import Envelope, GatewayRequest, RouteCall, open_call
from gateway.router import Match, split_path
from gateway.routes.model import Route, RouteTable
from gateway.runtime import Runtime
from gateway.stack import Answer, BuildContext
from gateway.types import Message


def context(table: RouteTable, runtime: Runtime | None = None) -> BuildContext:
    """What a table's stacks are built from (the registered policies)."""
    from gateway.registry import AROUND_KIND, POLICIES

    runtime = runtime or Runtime(redis_url="", failure_mode="open")
    return BuildContext(
        table=table,
        runtime=runtime,
        clients=runtime.clients.for_upstreams(table.upstreams),
        guards=runtime.guards_for(table.upstreams),
        policies=(*POLICIES, *AROUND_KIND),
    )


def scope_for(
    method: str, path: str, headers: Mapping[str, str], query: bytes = b"", kind: str = "http"
) -> dict[str, Any]:
    return {
        "type": kind,
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "headers": [(k.lower().encode(), v.encode("latin-1")) for k, v in headers.items()],
        "client": ("192.0.2.1", 5000),
        "server": ("127.0.0.1", 8000),
        "scheme": "ws" if kind == "websocket" else "http",
    }


def envelope_for(found: Match, **fields: Any) -> Envelope:
    made = Envelope(
        found=found,
        request_id="rid-1",
        client="192.0.2.1",
        forwarded_for="192.0.2.1",
        forwarded_proto="http",
        forwarded_host="gw.example",
    )
    for name, value in fields.items():
        setattr(made, name, value)
    return made


def match_of(route: Route, path: str | None = None) -> Match:
    from gateway.router import Router

    path = path if path is not None else route.path
    found = Router((route,)).match(sorted(route.methods)[0], split_path(path))
    assert isinstance(found, Match), found
    return found


def http_call(
    route: Route,
    *,
    method: str = "GET",
    path: str | None = None,
    headers: Mapping[str, str] | None = None,
    query: bytes = b"",
    body: bytes = b"",
    **fields: Any,
) -> RouteCall:
    """An HTTP request to `route`, as the edge hands it to the route's stack."""
    found = match_of(route, path)
    scope = scope_for(method, path or route.path, headers or {}, query)
    request = GatewayRequest(scope, io.BytesIO(body))
    request.envelope = envelope_for(found, body_size=len(body), **fields)
    return open_call(request.envelope, found, scope, request=request)


def handshake_call(
    route: Route,
    *,
    headers: Mapping[str, str] | None = None,
    path: str | None = None,
    sent: list[Message] | None = None,
    **fields: Any,
) -> RouteCall:
    """A WebSocket handshake to `route`; what the stack sends lands in `sent`."""
    found = match_of(route, path)
    scope = scope_for("GET", path or route.path, headers or {}, kind="websocket")
    log = sent if sent is not None else []

    async def receive() -> Message:
        return {"type": "websocket.disconnect", "code": 1000}

    async def send(message: Message) -> None:
        log.append(message)

    return open_call(envelope_for(found, **fields), found, scope, receive=receive, send=send)


async def ok(call: RouteCall) -> Answer:
    """An inner handler that answers 200 "ok" (and remembers it was reached)."""
    call.envelope.request_id += "+reached"
    return HttpResponse("ok")
