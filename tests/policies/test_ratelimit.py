"""Rate limits (gateway/policies/ratelimit.py): the route's `rate_limit`,
whose bucket a request draws from, and the stage."""

from __future__ import annotations

import pytest

from gateway.envelope import Caller
from gateway.errors import TooManyRequests, Unavailable
from gateway.policies.ratelimit import (
    OPTION,
    add_rate_headers,
    build_route_limit,
    rate_limit_stage,
)
from gateway.runtime import Runtime
from gateway.stores.limiter import Decision, StoreUnavailable
from tests.calls import context, handshake_call, http_call, ok
from tests.conftest import table

ROUTES = table(
    """
    version: 1
    upstreams: {u: {url: "http://u"}}
    routes:
      - {name: client, path: /c, rate_limit: {limit: 2, window: 1m}, backends: [{upstream: u, path: /x}]}
      - {name: header, path: /h, rate_limit: {limit: 5, window: 1s, burst: 20, key: "header:X-Tenant"}, backends: [{upstream: u, path: /x}]}
      - {name: global, path: /g, rate_limit: {limit: 1, window: 1s, key: global}, backends: [{upstream: u, path: /x}]}
      - {name: free, path: /f, backends: [{upstream: u, path: /x}]}
    """
)
CLIENT, HEADER, GLOBAL, FREE = ROUTES.routes


def test_the_routes_file_gives_limit_window_burst_and_key() -> None:
    spec = OPTION.of(HEADER)
    assert spec is not None
    assert (spec.limit, spec.window, spec.burst, spec.key) == (5, 1.0, 20, "header:x-tenant")
    limit = build_route_limit(HEADER, spec)
    assert (limit.capacity, limit.rate, limit.header) == (20, 5.0, b"x-tenant")
    assert OPTION.of(FREE) is None and rate_limit_stage(FREE, context(ROUTES)) is None


async def test_buckets_by_identity_then_header_then_address() -> None:
    spec = OPTION.of(CLIENT)
    assert spec is not None
    limit = build_route_limit(CLIENT, spec)
    anonymous = http_call(CLIENT).envelope
    assert limit.bucket(anonymous, []) == "client:ip:192.0.2.1"
    known = http_call(CLIENT, caller=Caller("alice", "keys")).envelope
    assert limit.bucket(known, []) == "client:id:keys/alice"
    by_header = build_route_limit(HEADER, OPTION.of(HEADER))  # type: ignore[arg-type]
    tenant = by_header.bucket(anonymous, [(b"x-tenant", b"acme")])
    assert tenant.startswith("header:h:") and "acme" not in tenant  # hashed
    assert by_header.bucket(anonymous, []) == "header:ip:192.0.2.1"  # no header: the address
    everyone = build_route_limit(GLOBAL, OPTION.of(GLOBAL))  # type: ignore[arg-type]
    assert everyone.bucket(known, []) == "global:global"


async def test_the_stage_takes_a_token_and_says_what_is_left() -> None:
    built = context(ROUTES)
    stage = rate_limit_stage(CLIENT, built)
    assert stage is not None
    handler = stage(ok)
    first = http_call(CLIENT)
    await handler(first)
    assert first.answer_headers == [
        ("RateLimit-Limit", "2"),
        ("RateLimit-Remaining", "1"),
        ("RateLimit-Reset", "30"),
    ]
    await handler(http_call(CLIENT))
    with pytest.raises(TooManyRequests) as refused:
        await handler(http_call(CLIENT))
    assert refused.value.headers["Retry-After"] == "30"
    assert refused.value.headers["RateLimit-Remaining"] == "0"
    await built.runtime.aclose()


async def test_a_handshake_takes_a_token_too() -> None:
    stage = rate_limit_stage(GLOBAL, context(ROUTES))
    assert stage is not None
    call = handshake_call(GLOBAL)
    await stage(ok)(call)
    assert ("RateLimit-Limit", "1") in call.answer_headers  # they go on the accept
    with pytest.raises(TooManyRequests):
        await stage(ok)(handshake_call(GLOBAL))


class _Down:
    async def acquire(self, key: str, capacity: int, rate: float) -> Decision:
        raise StoreUnavailable

    def housekeep(self) -> None: ...
    async def aclose(self) -> None: ...


@pytest.mark.parametrize(("mode", "admitted"), [("open", True), ("closed", False)])
async def test_a_store_that_is_down_admits_or_refuses_as_configured(
    mode: str, admitted: bool
) -> None:
    runtime = Runtime(redis_url="", failure_mode=mode)
    runtime.limiter = _Down()
    stage = rate_limit_stage(CLIENT, context(ROUTES, runtime))
    assert stage is not None
    call = http_call(CLIENT)
    if admitted:
        await stage(ok)(call)
        assert call.answer_headers == []  # nothing was counted: no RateLimit-* headers
    else:
        with pytest.raises(Unavailable):
            await stage(ok)(call)


async def test_two_limits_leave_the_one_closest_to_running_out() -> None:
    routes = table(
        "version: 1\nupstreams: {u: {url: 'http://u'}}\n"
        "routes: [{name: r, path: /r, proxy: {upstream: u, path: /x}}]\n"
    )
    call = http_call(routes.routes[0])
    plan = [("RateLimit-Limit", "4"), ("RateLimit-Remaining", "3"), ("RateLimit-Reset", "15")]
    route = [("RateLimit-Limit", "100"), ("RateLimit-Remaining", "99"), ("RateLimit-Reset", "1")]
    add_rate_headers(call, plan)
    add_rate_headers(call, route)
    assert call.answer_headers == plan  # one set: the plan's, 3 left
    add_rate_headers(
        call, [("RateLimit-Limit", "2"), ("RateLimit-Remaining", "0"), ("RateLimit-Reset", "9")]
    )
    assert dict(call.answer_headers)["RateLimit-Remaining"] == "0"
    assert len(call.answer_headers) == 3
    add_rate_headers(call, [])  # a store down in open mode: nothing counted, nothing said
    assert len(call.answer_headers) == 3
