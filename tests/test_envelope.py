"""The envelope and a route call (gateway/envelope.py)."""

from __future__ import annotations

import asyncio

import pytest

from gateway.envelope import Caller, RouteCall, UpstreamEdits, open_call
from gateway.observe.trace import continue_or_start
from tests.calls import http_call
from tests.conftest import envelope, table

ROUTE = table(
    """
    version: 1
    upstreams: {u: {url: "http://u"}}
    routes: [{name: r, path: /r, timeout: 3s, backends: [{upstream: u, path: /x}]}]
    """
).routes[0]


def test_who_is_asking_reads_through_the_caller() -> None:
    anonymous = envelope("r")
    assert (anonymous.identity, anonymous.identity_key, anonymous.identity_headers) == (
        None,
        None,
        (),
    )
    anonymous.caller = Caller("alice", "keys", ((b"x-client", b"alice"),), {"tenant": "t"})
    assert anonymous.identity_key == "keys/alice"
    assert anonymous.claims == {"tenant": "t"}
    assert anonymous.identity_headers == ((b"x-client", b"alice"),)


def test_what_the_gateway_tells_every_upstream() -> None:
    made = envelope("r", identity="alice")
    made.caller = Caller("alice", "keys", ((b"x-client", b"alice"),))
    headers = dict(made.gateway_headers())
    assert headers[b"x-request-id"] == b"r-1"
    assert headers[b"x-forwarded-for"] == b"192.0.2.9"
    assert headers[b"x-forwarded-host"] == b"h" and headers[b"x-client"] == b"alice"
    assert b"tracestate" not in headers
    made.trace = continue_or_start("00-" + "1" * 32 + "-" + "2" * 16 + "-01", "vendor=1")
    assert dict(made.gateway_headers())[b"tracestate"] == b"vendor=1"


def test_what_a_request_held_is_given_back_once() -> None:
    made = envelope("r")
    given: list[str] = []
    made.after_answer.append(lambda: given.append("memory"))
    made.answered()
    made.answered()
    assert given == ["memory"]


def test_request_hooks_edits_replace_and_remove_headers() -> None:
    edits = UpstreamEdits(((b"x-tenant", b"t1"),), frozenset({b"cookie"}))
    sent = edits.apply([(b"x-tenant", b"forged"), (b"cookie", b"c"), (b"accept", b"*/*")])
    assert sent == [(b"accept", b"*/*"), (b"x-tenant", b"t1")]
    assert edits.key() == [("cookie", ""), ("x-tenant", "t1")]


async def test_the_route_deadline_is_fixed_when_the_call_is_made() -> None:
    call = http_call(ROUTE)
    loop = asyncio.get_running_loop()
    assert 2.9 < call.deadline - loop.time() <= 3.0
    assert 2.9 < call.remaining() <= 3.0
    assert call.route is ROUTE and call.http.envelope is call.envelope


async def test_a_handshake_has_no_http_request() -> None:
    call = http_call(ROUTE)
    handshake = open_call(call.envelope, call.match, call.scope)
    assert isinstance(handshake, RouteCall) and handshake.request is None
    with pytest.raises(AssertionError):
        handshake.http  # noqa: B018
