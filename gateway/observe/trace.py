"""W3C Trace Context, always on (SPEC 3.13): a valid incoming `traceparent`
(and its `tracestate`) is continued, anything else starts a new trace; every
upstream call gets its own `traceparent` whose parent is the gateway's span
for that call, so a client's `traceparent` never reaches an upstream as it
came. The access log carries `trace_id`.

    traceparent: 00-<trace-id: 32 hex>-<parent-id: 16 hex>-<flags: 2 hex>

Ids come from `os.urandom` in one call per request (a few hundred
nanoseconds); nothing here allocates per call beyond the header bytes.
"""

from __future__ import annotations

import os
import re

__all__ = ["TraceContext", "continue_or_start"]

# Version 00 as the spec defines it; a later version's first four fields
# are read the same way (the spec's rule for forward compatibility).
_TRACEPARENT = re.compile(
    r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?", re.ASCII
)
_NO_TRACE, _NO_SPAN = "0" * 32, "0" * 16
_MAX_TRACESTATE = 512  # the spec allows dropping a longer one


class TraceContext:
    """One request's trace: its id, the gateway's span for the request, the
    caller's span (if it continued one) and what is passed on."""

    __slots__ = ("_span_id", "parent_id", "sampled", "trace_id", "tracestate")

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

    @property
    def span_id(self) -> str:
        """The gateway's SERVER span for this request, made when first asked
        for (nothing on the request path asks yet)."""
        if self._span_id is None:
            self._span_id = os.urandom(8).hex()
        return self._span_id

    def child_headers(self) -> list[tuple[bytes, bytes]]:
        """The headers for one upstream call: a new span id under this trace."""
        return self.headers_for(os.urandom(8).hex())

    def headers_for(self, span_id: str) -> list[tuple[bytes, bytes]]:
        flags = "01" if self.sampled else "00"
        value = f"00-{self.trace_id}-{span_id}-{flags}".encode()
        if self.tracestate is None:
            return [(b"traceparent", value)]
        return [(b"traceparent", value), (b"tracestate", self.tracestate)]


def continue_or_start(traceparent: str | None, tracestate: str | None) -> TraceContext:
    """The request's trace: the caller's when its `traceparent` is valid, else a new one."""
    if traceparent:
        found = _TRACEPARENT.fullmatch(traceparent.strip())
        if found is not None:
            version, trace_id, parent_id, flags, rest = found.groups()
            valid = (
                version != "ff"
                and (version != "00" or rest is None)
                and trace_id != _NO_TRACE
                and parent_id != _NO_SPAN
            )
            if valid:
                state = None
                if tracestate and len(tracestate) <= _MAX_TRACESTATE and tracestate.isprintable():
                    state = tracestate.strip().encode("latin-1", "replace")
                sampled = bool(int(flags, 16) & 1)
                return TraceContext(trace_id, parent_id, sampled, state)
    return TraceContext(os.urandom(16).hex(), None, True, None)
