"""A Gateway, built from a routes table (gateway/assembly.py), and what its
stacks are built from (gateway/stack.py's BuildContext)."""

from __future__ import annotations

from gateway.assembly import NO_WEBSOCKETS, build_gateway
from gateway.router import BadPath, Match, NoMatch
from gateway.runtime import Runtime
from tests.calls import context
from tests.conftest import table

ROUTES = table(
    """
    version: 1
    settings: {forward_headers: [Accept-Language, Cookie]}
    upstreams: {u: {url: "http://u", headers: {X-Static: s}}}
    auth:
      keys: {type: api_key, header: X-Key, identity_header: X-Client, query_param: key, keys: [{id: a, key: k}]}
    routes:
      - {name: agg, path: "/a/{id}", cors: {allow_origins: ["*"]}, auth: keys, backends: [{upstream: u, path: /x}]}
      - {name: chat, path: /chat, websocket: {upstream: u, path: /ws, max_message_size: 2MiB}}
      - {name: files, path: "/files/{rest:path}", proxy: {upstream: u, path: "/{rest}"}}
    """
)


async def test_the_edge_knows_what_it_needs_before_a_route_runs() -> None:
    runtime = Runtime(redis_url="", failure_mode="open")
    gateway = build_gateway(ROUTES, runtime)
    assert set(gateway.handlers) == {"agg", "chat", "files"}
    assert gateway.preflights == {"agg"} and gateway.handshakes == {"chat"}
    assert gateway.query_credentials == {"agg": {"key": "keys"}}
    assert gateway.secret_params == {"key"}
    assert gateway.websocket_max_size == 2 * 1024 * 1024
    found = gateway.match("GET", "/a/7")
    assert isinstance(found, Match) and found.params == {"id": "7"}
    assert isinstance(gateway.match("GET", "/nowhere"), NoMatch)
    assert isinstance(gateway.match("GET", "/files/%ff"), BadPath)  # not UTF-8
    await runtime.aclose()


def test_without_websocket_routes_uvicorn_is_told_a_small_size() -> None:
    plain = table("version: 1\nroutes: []\n")
    assert build_gateway(plain, Runtime(redis_url="", failure_mode="open")).websocket_max_size == (
        NO_WEBSOCKETS
    )


def test_what_relaying_routes_never_pass_on() -> None:
    built = context(ROUTES)
    agg, chat, _ = ROUTES.routes
    assert built.owned_headers == {b"x-client", b"x-gateway-mirror"}
    assert built.consumed(agg) == {b"x-key"} and built.consumed(chat) == frozenset()
    dropped = built.not_relayed(agg, ((b"x-static", b"s"),))
    assert {b"x-key", b"x-client", b"x-static", b"host", b"x-forwarded-for"} <= dropped
    assert b"x-gateway-mirror" in dropped  # the gateway's, on every route
    assert b"cookie" not in dropped  # settings.forward_headers names it
    assert built.once("k", lambda: 1) == 1 and built.once("k", lambda: 2) == 1
