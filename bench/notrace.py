"""The gateway with W3C trace context switched off: make bench's baseline for
scenario T (what always-on propagation costs). Not something the product offers."""

from typing import Any

from gateway.edge import context


def _no_trace(traceparent: str | None, tracestate: str | None) -> Any:
    return None  # the envelope's trace stays None: nothing propagated, nothing logged


context.continue_or_start = _no_trace

from config.asgi import application  # noqa: E402 (after the switch)

__all__ = ["application"]
