"""The public hook API (gateway.hooks): what each context lets a hook change,
and what it refuses at the call."""

from __future__ import annotations

import pytest

from gateway.hooks import FRAMING_HEADERS, Rejection
from gateway.hooks.testing import backend_call, request_context, response_context

REFUSED = [*sorted(FRAMING_HEADERS), "Proxy-Authorization", "proxy-connection", "HOST"]


@pytest.mark.parametrize("name", REFUSED)
def test_framing_and_hop_by_hop_headers_cannot_be_set_or_removed(name: str) -> None:
    ctx = request_context()
    call = backend_call()
    response = response_context({})
    for attempt in (
        lambda: ctx.set_upstream_header(name, "1"),
        lambda: ctx.remove_upstream_header(name),
        lambda: call.set_header(name, "1"),
        lambda: call.remove_header(name),
        lambda: response.set_header(name, "1"),
    ):
        with pytest.raises(ValueError, match="hooks cannot set it"):
            attempt()
    assert ctx.upstream_headers_set == {} and call.headers == {} and response.headers == {}


def test_setting_a_header_replaces_every_value_it_had() -> None:
    ctx = request_context()
    ctx.set_upstream_header("X-Tenant", "a")
    ctx.set_upstream_header("x-tenant", "b")
    assert ctx.upstream_headers_set == {"x-tenant": "b"}
    ctx.remove_upstream_header("X-Tenant")
    assert ctx.upstream_headers_set == {} and ctx.upstream_headers_removed == {"x-tenant"}

    call = backend_call(headers={"X-Sig": "old", "Accept": "application/json"})
    call.set_header("x-sig", "new")
    assert call.headers == {"accept": "application/json", "x-sig": "new"}


@pytest.mark.parametrize("value", ["a\r\nX-Evil: 1", "a\nb", "nul\0", "\u2603"])
def test_header_values_that_could_split_a_message_are_refused(value: str) -> None:
    with pytest.raises((ValueError, UnicodeEncodeError)):
        request_context().set_upstream_header("X-Ok", value)


def test_invalid_names_are_refused() -> None:
    for name in ("", "X Y", "X:Y", "é"):
        with pytest.raises(ValueError, match="not a header name"):
            request_context().set_upstream_header(name, "1")


def test_the_gateways_own_response_headers_are_refused() -> None:
    response = response_context({})
    for name in ("Content-Type", "X-Gateway-Completed"):
        with pytest.raises(ValueError, match="the gateway sets"):
            response.set_header(name, "x")


def test_reject_raises_a_rejection_with_a_4xx_or_5xx() -> None:
    with pytest.raises(Rejection) as raised:
        request_context().reject(451, "no")
    assert (raised.value.status, raised.value.detail) == (451, "no")
    with pytest.raises(ValueError, match="4xx or 5xx"):
        Rejection(302, "elsewhere")
