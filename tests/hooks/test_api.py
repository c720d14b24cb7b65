"""The public hook API (gateway.hooks): what each context lets a hook change,
and what it refuses at the call."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gateway.hooks import FRAMING_HEADERS, BackendOutcome, Rejection
from gateway.hooks.testing import backend_call, request_context, response_context

REFUSED = [*sorted(FRAMING_HEADERS), "Proxy-Authorization", "proxy-connection", "HOST"]


@pytest.mark.parametrize("name", REFUSED)
def test_framing_and_hop_by_hop_headers_cannot_be_set_or_removed(name: str) -> None:
    ctx = request_context()
    call = backend_call()
    response = response_context({})
    attempts: tuple[Callable[[], None], ...] = (
        lambda: ctx.set_upstream_header(name, "1"),
        lambda: ctx.remove_upstream_header(name),
        lambda: call.set_header(name, "1"),
        lambda: call.remove_header(name),
        lambda: response.set_header(name, "1"),
    )
    for attempt in attempts:
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


def test_a_requests_lazy_views_are_read_only_and_built_when_read() -> None:
    request = request_context(
        headers={"X-A": "1"}, query="a=1&a=2&b=", claims={"tenant": "t"}
    ).request
    assert request.headers["x-a"] == "1" and request.query == {"a": "1", "b": ""}
    assert request.query_string == "a=1&a=2&b=" and request.claims["tenant"] == "t"
    with pytest.raises(TypeError):
        request.headers["x-a"] = "2"  # type: ignore[index]


def test_a_backend_calls_query_changes_as_it_will_be_sent() -> None:
    call = backend_call(query={"page": "1", "q": "a b"})
    call.set_query("page", "2")
    call.remove_query("q")
    assert call.query == {"page": "2"} and call.query_string == "page=2"


def test_the_answers_body_is_built_only_when_a_hook_reads_it() -> None:
    from gateway.hooks._wire import wire_answer, wire_body
    from gateway.hooks.testing import make_request

    built: list[object] = []

    def read(merged: object) -> object:
        built.append(merged)
        return {"parsed": True}

    untouched = wire_answer(make_request, tuple, "as merged", read)
    untouched.status = 201
    assert wire_body(untouched) == "as merged" and built == []  # nobody read it
    read_once = wire_answer(make_request, tuple, "as merged", read)
    read_once.body["extra"] = 1
    assert wire_body(read_once) == {"parsed": True, "extra": 1} and len(built) == 1
    replaced = wire_answer(make_request, tuple, "as merged", read)
    replaced.body = [1]
    assert wire_body(replaced) == [1] and len(built) == 1  # replaced without reading


def test_outcomes_are_built_once_when_first_read() -> None:
    made: list[int] = []

    def outcomes() -> tuple[BackendOutcome, ...]:
        made.append(1)
        return (outcome_of("a", ok=True), outcome_of("b", ok=False))

    from gateway.hooks import ResponseContext
    from gateway.hooks.testing import make_request

    response = ResponseContext(request=make_request(), outcomes=outcomes, body={})
    assert not response.completed and response.outcome("a").ok
    assert made == [1]
    with pytest.raises(KeyError):
        response.outcome("c")


def outcome_of(name: str, *, ok: bool) -> BackendOutcome:
    return BackendOutcome(
        name=name, key=None, required=True, ok=ok, status=200, error=None, duration_ms=1.0
    )
