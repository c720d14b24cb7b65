"""W3C Trace Context: continued when valid, started otherwise; every call its
own span (gateway/observe/trace.py)."""

from __future__ import annotations

import re

import pytest

from gateway.observe.trace import continue_or_start

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
HEADER = re.compile(rb"00-([0-9a-f]{32})-([0-9a-f]{16})-(0[01])")


def test_a_valid_traceparent_is_continued_with_its_tracestate() -> None:
    trace = continue_or_start(f"00-{TRACE}-{PARENT}-01", "congo=t61rcWkgMzE")
    assert (trace.trace_id, trace.parent_id, trace.sampled) == (TRACE, PARENT, True)
    value, (state,) = trace.attempt_header(), trace.state_headers()
    found = HEADER.fullmatch(value)
    assert found is not None
    assert found[1].decode() == TRACE and found[2].decode() not in (PARENT, trace.span_id)
    assert state == (b"tracestate", b"congo=t61rcWkgMzE")


def test_each_call_gets_its_own_span() -> None:
    trace = continue_or_start(f"00-{TRACE}-{PARENT}-00", None)
    spans = {trace.attempt_header() for _ in range(50)}
    assert len(spans) == 50
    assert all(v.endswith(b"-00") for v in spans)  # not sampled by the caller: kept


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "garbage",
        f"00-{'0' * 32}-{PARENT}-01",  # all-zero trace id
        f"00-{TRACE}-{'0' * 16}-01",  # all-zero parent
        f"ff-{TRACE}-{PARENT}-01",  # version ff is invalid
        f"00-{TRACE.upper()}-{PARENT}-01",  # upper case is not hex here
        f"00-{TRACE}-{PARENT}-01-extra",  # version 00 has exactly four fields
        f"00-{TRACE[:-1]}-{PARENT}-01",
    ],
)
def test_anything_else_starts_a_new_trace(header: str | None) -> None:
    trace = continue_or_start(header, "a=b")
    assert trace.parent_id is None and trace.trace_id != TRACE
    assert re.fullmatch(r"[0-9a-f]{32}", trace.trace_id)
    assert trace.state_headers() == []  # a new trace passes no tracestate on


def test_a_later_version_is_read_as_far_as_this_one_goes() -> None:
    trace = continue_or_start(f"01-{TRACE}-{PARENT}-01-future-stuff", None)
    assert trace.trace_id == TRACE and trace.parent_id == PARENT


def test_a_tracestate_outside_ascii_is_not_passed_on() -> None:
    trace = continue_or_start(f"00-{TRACE}-{PARENT}-01", "vendor=caf\u00e9")
    assert trace.trace_id == TRACE and trace.state_headers() == []
