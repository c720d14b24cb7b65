"""W3C Trace Context, always on (SPEC 3.13): a valid incoming `traceparent`
(and its `tracestate`) is continued, anything else starts a new trace; every
upstream attempt gets its own `traceparent` whose parent is the gateway's span
for that attempt, so a client's `traceparent` never reaches an upstream as it
came. The access log carries `trace_id`.

    traceparent: 00-<trace-id: 32 hex>-<parent-id: 16 hex>-<flags: 2 hex>

Ids come from a Mersenne Twister seeded from `os.urandom` at start-up, as
OpenTelemetry's SDK makes them: random enough for trace ids (they are not
secrets), and a tenth of the cost of a system call per id. With OpenTelemetry
export configured (gateway/observe/export.py installs a `SpanSink`), the sink's
sampler decides per request; a sampled request records its SERVER span and one
CLIENT span per upstream attempt as plain tuples, and hands them to the sink
when its access-log line is written. Encoding and sending happen on the sink's
own thread, in batches. Without a sink nothing is recorded.
"""

from __future__ import annotations

import os
import random
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from gateway.routes.model import Route

__all__ = [
    "CallRecord",
    "CallSpan",
    "CallTarget",
    "ServerRecord",
    "SpanSink",
    "TraceContext",
    "continue_or_start",
    "install_sink",
]

# Version 00 as the spec defines it; a later version's first four fields
# are read the same way (the spec's rule for forward compatibility).
_TRACEPARENT = re.compile(
    r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?", re.ASCII
)
_NO_TRACE, _NO_SPAN = "0" * 32, "0" * 16
_MAX_TRACESTATE = 512  # the spec allows dropping a longer one
_ids = random.Random(os.urandom(32))  # noqa: S311 (ids, not secrets: as the OTel SDK)
_bits = _ids.getrandbits


def _span_id() -> str:
    return f"{_bits(64) or 1:016x}"  # never all zeros


def _trace_id() -> str:
    return f"{_bits(128) or 1:032x}"


@dataclass(frozen=True, slots=True)
class CallTarget:
    """Who one upstream call goes to: the CLIENT span's fixed attributes
    (made once per backend at load time, or per proxied method)."""

    backend: str  # gateway.backend
    host: str  # server.address
    port: int  # server.port
    method: str  # http.request.method
    rpc_service: str | None = None  # a grpc route's calls: rpc.system grpc, rpc.service


# One CLIENT span: span id, start and end (Unix ns), target, attempt number,
# the answer's status (None: no answer), and whether the attempt failed.
type CallRecord = tuple[str, int, int, CallTarget, int, int | None, bool]


@dataclass(frozen=True, slots=True)
class ServerRecord:
    """One sampled request: its SERVER span and the CLIENT spans under it."""

    trace_id: str
    span_id: str
    parent_id: str | None  # the caller's span, when the trace was continued
    tracestate: bytes | None
    start_ns: int
    end_ns: int
    method: str
    route: Route | None  # None: no route matched
    path: str  # url.path, without the query
    client: str
    status: int
    calls: list[CallRecord]
    grpc_status: int | None = None  # a grpc route's call: rpc.grpc.status_code


class SpanSink(Protocol):
    """Where sampled requests go (gateway/observe/export.py)."""

    def sample(self, trace_id: str, parent_id: str | None, parent_sampled: bool) -> bool: ...

    def submit(self, record: ServerRecord) -> None: ...


_sink: SpanSink | None = None


def install_sink(sink: SpanSink | None) -> None:
    """Export on (a sink) or off (None), for requests that start from now on."""
    global _sink
    _sink = sink


class TraceContext:
    """One request's trace: its id, the gateway's span for the request, the
    caller's span (if it continued one) and what is passed on."""

    __slots__ = (
        "_head",
        "_span_id",
        "_tail",
        "calls",
        "parent_id",
        "sampled",
        "start_ns",
        "trace_id",
        "tracestate",
    )

    def __init__(
        self,
        trace_id: str,
        parent_id: str | None,
        sampled: bool,
        tracestate: bytes | None,
    ) -> None:
        self.trace_id = trace_id
        self.parent_id = parent_id  # the caller's span, when a trace was continued
        self.sampled = sampled
        self.tracestate = tracestate
        self._span_id: str | None = None
        self._head = b""  # b"00-<trace-id>-", made by the first call
        self._tail = b""
        # Recording (export on and this request sampled): the CLIENT spans so far.
        self.calls: list[CallRecord] | None = None
        self.start_ns = 0

    @property
    def span_id(self) -> str:
        """The gateway's SERVER span for this request, made when first asked for."""
        if self._span_id is None:
            self._span_id = _span_id()
        return self._span_id

    @property
    def recording(self) -> bool:
        return self.calls is not None

    def call(self, target: CallTarget, attempt: int) -> CallSpan:
        """The recorded span of one upstream attempt (its `traceparent` header
        value is `header`); `end()` it when the attempt is over."""
        return CallSpan(self, target, attempt)

    def header(self, span_id: int) -> bytes:
        """The traceparent of a span of this trace (`span_id`: 64 bits)."""
        if not self._head:
            self._head = f"00-{self.trace_id}-".encode()
            self._tail = b"-01" if self.sampled else b"-00"
        return b"%b%016x%b" % (self._head, span_id, self._tail)

    def attempt_header(self) -> bytes:
        """The traceparent of an upstream attempt that is not recorded."""
        return self.header(_bits(64) or 1)

    def state_headers(self) -> list[tuple[bytes, bytes]]:
        """What every call passes on besides its own traceparent."""
        return [] if self.tracestate is None else [(b"tracestate", self.tracestate)]

    def finish(
        self,
        method: str,
        route: Route | None,
        path: str,
        client: str,
        status: int,
        grpc_status: int | None = None,
    ) -> None:
        """The request is over (its access-log line is being written): a
        recorded request goes to the sink."""
        calls, sink = self.calls, _sink
        if calls is None or sink is None:
            return
        self.calls = None  # once
        sink.submit(
            ServerRecord(
                self.trace_id,
                self.span_id,
                self.parent_id,
                self.tracestate,
                self.start_ns,
                time.time_ns(),
                method,
                route,
                path,
                client,
                status,
                calls,
                grpc_status,
            )
        )


class CallSpan:
    """One recorded upstream attempt: its traceparent and its CLIENT span."""

    __slots__ = ("attempt", "header", "span_id", "start_ns", "target", "trace")

    def __init__(self, trace: TraceContext, target: CallTarget, attempt: int) -> None:
        self.trace, self.target, self.attempt = trace, target, attempt
        span = _bits(64) or 1
        self.span_id = f"{span:016x}"
        self.header = trace.header(span)
        self.start_ns = time.time_ns()

    def end(self, status: int | None, failed: bool) -> None:
        calls = self.trace.calls
        if calls is not None:
            calls.append(
                (
                    self.span_id,
                    self.start_ns,
                    time.time_ns(),
                    self.target,
                    self.attempt,
                    status,
                    failed,
                )
            )


def continue_or_start(traceparent: str | None, tracestate: str | None) -> TraceContext:
    """The request's trace: the caller's when its `traceparent` is valid, else a new one."""
    context = _parse(traceparent, tracestate)
    if context is None:
        context = TraceContext(_trace_id(), None, True, None)
    sink = _sink
    if sink is not None:
        context.sampled = sink.sample(context.trace_id, context.parent_id, context.sampled)
        if context.sampled:
            context.calls = []
            context.start_ns = time.time_ns()
    return context


def _parse(traceparent: str | None, tracestate: str | None) -> TraceContext | None:
    if not traceparent:
        return None
    found = _TRACEPARENT.fullmatch(traceparent.strip())
    if found is None:
        return None
    version, trace_id, parent_id, flags, rest = found.groups()
    valid = (
        version != "ff"
        and (version != "00" or rest is None)
        and trace_id != _NO_TRACE
        and parent_id != _NO_SPAN
    )
    if not valid:
        return None
    state = None
    if (
        tracestate
        and len(tracestate) <= _MAX_TRACESTATE
        and tracestate.isascii()  # as W3C defines it (and protobuf strings need UTF-8)
        and tracestate.isprintable()
    ):
        state = tracestate.strip().encode("ascii")
    return TraceContext(trace_id, parent_id, bool(int(flags, 16) & 1), state)
