"""Prometheus metrics (SPEC 3.9), one process per container.

Every family the contract names is defined here and nowhere else; the code
that observes an event increments the family directly.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

__all__ = [
    "BACKEND_DURATION",
    "BACKEND_REQUESTS",
    "CIRCUIT_OPEN",
    "CONFIG_RELOADS",
    "CONTENT_TYPE_LATEST",
    "MEMORY_BUDGET_REJECTIONS",
    "RATELIMIT_BUCKETS",
    "RATELIMIT_REJECTED",
    "RATELIMIT_STORE_ERRORS",
    "REQUESTS",
    "REQUEST_DURATION",
    "WEBSOCKET_CONNECTIONS",
    "WEBSOCKET_MESSAGES",
    "observe_backend",
    "observe_request",
    "observe_upstream",
    "render",
    "set_enabled",
    "websocket_counters",
]

disable_created_metrics()  # type: ignore[no-untyped-call]  # no `*_created` series

_LATENCY_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)

REQUESTS = Counter("gateway_requests_total", "Requests answered.", ["route", "method", "status"])
REQUEST_DURATION = Histogram(
    "gateway_request_duration_seconds",
    "Time to answer a request.",
    ["route"],
    buckets=_LATENCY_BUCKETS,
)
BACKEND_REQUESTS = Counter(
    "gateway_backend_requests_total", "Backend calls by outcome.", ["route", "backend", "outcome"]
)
BACKEND_DURATION = Histogram(
    "gateway_backend_duration_seconds",
    "Upstream call time.",
    ["upstream"],
    buckets=_LATENCY_BUCKETS,
)
HOOK_DURATION = Histogram(
    "gateway_hook_duration_seconds",
    "Time spent in each Python hook.",
    ["hook"],
    buckets=_LATENCY_BUCKETS,
)
RATELIMIT_REJECTED = Counter(
    "gateway_ratelimit_rejected_total", "Requests refused with 429.", ["route"]
)
RATELIMIT_STORE_ERRORS = Counter(
    "gateway_ratelimit_store_errors_total", "Rate-limit decisions the shared store could not take."
)
CONFIG_RELOADS = Counter("gateway_config_reloads_total", "Routes file reloads.", ["result"])
RATELIMIT_BUCKETS = Gauge(
    "gateway_ratelimit_buckets",
    "Rate-limit buckets held in this process (not yet full again).",
)
MEMORY_BUDGET_REJECTIONS = Counter(
    "gateway_memory_budget_rejections_total",
    "Backend bodies refused because holding them would pass MEMORY_BUDGET.",
)
CIRCUIT_OPEN = Gauge(
    "gateway_circuit_open", "1 while the upstream's circuit is open.", ["upstream"]
)
WEBSOCKET_CONNECTIONS = Gauge(
    "gateway_websocket_connections", "WebSocket pairs being relayed.", ["route"]
)
WEBSOCKET_MESSAGES = Counter(
    "gateway_websocket_messages_total",
    "WebSocket messages relayed, by direction.",
    ["route", "direction"],
)


# Per-request observations go through these helpers: they skip the work when
# METRICS is off, and cache label children (prometheus-client's labels() takes
# a lock and validates the names on every call).
_enabled = True
_children: dict[tuple[object, ...], Any] = {}


def set_enabled(enabled: bool) -> None:
    global _enabled
    _enabled = enabled


def _child(family: Any, *labels: str) -> Any:
    key = (family, *labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = family.labels(*labels)
    return child


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    if _enabled:
        _child(REQUESTS, route, method, str(status)).inc()
        _child(REQUEST_DURATION, route).observe(seconds)


def observe_backend(route: str, backend: str, outcome: str) -> None:
    if _enabled:
        _child(BACKEND_REQUESTS, route, backend, outcome).inc()


def observe_upstream(upstream: str, seconds: float) -> None:
    if _enabled:
        _child(BACKEND_DURATION, upstream).observe(seconds)


class _Nothing:
    def inc(self, amount: float = 1) -> None:
        return None

    def dec(self, amount: float = 1) -> None:
        return None


def websocket_counters(route: str) -> tuple[Any, Any, Any]:
    """(connections gauge, messages client to upstream, messages upstream to
    client) of a route, bound once per connection, for per-message use."""
    if not _enabled:
        return _Nothing(), _Nothing(), _Nothing()
    return (
        _child(WEBSOCKET_CONNECTIONS, route),
        _child(WEBSOCKET_MESSAGES, route, "client_to_upstream"),
        _child(WEBSOCKET_MESSAGES, route, "upstream_to_client"),
    )


def observe_hook(hook: str, seconds: float) -> None:
    if _enabled:
        _child(HOOK_DURATION, hook).observe(seconds)


def render() -> bytes:
    return generate_latest()
