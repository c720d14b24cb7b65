"""Prometheus metrics (SPEC 3.9), one process per container.

Every family the contract names is defined here and nowhere else; the code
that observes an event increments the family directly.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator
from itertools import accumulate
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString as _untyped_go_float

__all__ = [
    "BACKEND_DURATION",
    "BACKEND_REQUESTS",
    "CIRCUIT_OPEN",
    "CONFIG_RELOADS",
    "CONTENT_TYPE_LATEST",
    "HOOK_DURATIONS",
    "MEMORY_BUDGET_REJECTIONS",
    "MEMORY_BUDGET_USED",
    "MEMORY_BUDGET_WAITING",
    "MIRROR",
    "RATELIMIT_BUCKETS",
    "RATELIMIT_REJECTED",
    "RATELIMIT_STORE_ERRORS",
    "REQUESTS",
    "REQUEST_DURATION",
    "STREAM_REJECTIONS",
    "TRACE_EXPORT_ERRORS",
    "UPSTREAM_DISCARDS",
    "UPSTREAM_STREAMS",
    "UPSTREAM_TARGET_HEALTHY",
    "UPSTREAM_TARGET_REQUESTS",
    "WEBSOCKET_CONNECTIONS",
    "WEBSOCKET_MESSAGES",
    "hook_timer",
    "observe_backend",
    "observe_hook",
    "observe_mirror",
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
MEMORY_BUDGET_USED = Gauge(
    "gateway_memory_budget_used_bytes",
    "What aggregate routes hold of MEMORY_BUDGET now (bodies, parsed objects, answers).",
)
MEMORY_BUDGET_WAITING = Gauge(
    "gateway_memory_budget_waiting",
    "Aggregate requests waiting, in arrival order, for memory to be given back.",
)
TRACE_EXPORT_ERRORS = Counter(
    "gateway_trace_export_errors_total",
    "Spans dropped: the export queue was full or the collector did not take them.",
)
CIRCUIT_OPEN = Gauge(
    "gateway_circuit_open", "1 while the upstream's circuit is open.", ["upstream"]
)
UPSTREAM_DISCARDS = Counter(
    "gateway_upstream_connections_discarded_total",
    "Upstream connections closed because the upstream sent bytes nobody asked for:"
    " outside an answer's framing, or waiting on an idle connection about to be reused.",
    ["upstream", "reason"],
)
UPSTREAM_STREAMS = Gauge(
    "gateway_upstream_streams",
    "Long-lived connections (event streams, NDJSON answers, WebSockets) open to an upstream.",
    ["upstream"],
)
STREAM_REJECTIONS = Counter(
    "gateway_stream_rejections_total",
    "Long-lived answers refused (503): the upstream's max_streams or the client's"
    " max_streams_per_client was reached.",
    ["upstream", "reason"],
)
UPSTREAM_TARGET_HEALTHY = Gauge(
    "gateway_upstream_target_healthy",
    "1 while the target takes calls; 0 while it is ejected or failing its health checks.",
    ["upstream", "target"],
)
MIRROR = Counter(
    "gateway_mirror_total",
    "Mirrored calls: match, mismatch (compare: true), error, dropped; sent (compare off).",
    ["route", "result"],
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


def observe_mirror(route: str, result: str) -> None:
    if _enabled:
        _child(MIRROR, route, result).inc()


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


def _go_float(value: float) -> str:
    """How Prometheus writes a bucket bound."""
    return str(_untyped_go_float(value))  # type: ignore[no-untyped-call]


class _HookDurations:
    """gateway_hook_duration_seconds{hook}, a histogram as Prometheus defines
    it, kept in plain lists: hooks run on the event loop's one thread, and a
    prometheus_client Histogram would take two locks and walk its buckets on
    every hook call (up to five per request)."""

    BOUNDS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
              0.25, 0.5, 1.0, 2.5, 5.0, 10.0)  # fmt: skip

    def __init__(self) -> None:
        self.series: dict[str, tuple[list[int], list[float]]] = {}

    def observe(self, hook: str, seconds: float) -> None:
        self.timer(hook)(seconds)

    def timer(self, hook: str) -> Callable[[float], None]:
        """What records one duration of `hook`: made when the routes load, so
        that a hook's call costs a bisect and two additions."""
        found = self.series.get(hook)
        if found is None:
            found = self.series[hook] = ([0] * (len(self.BOUNDS) + 1), [0.0])
        counts, total, bounds = found[0], found[1], self.BOUNDS

        def record(seconds: float) -> None:
            counts[bisect_left(bounds, seconds)] += 1
            total[0] += seconds

        return record

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(
            "gateway_hook_duration_seconds", "Time spent in each Python hook.", labels=["hook"]
        )
        bounds = [_go_float(b) for b in self.BOUNDS] + ["+Inf"]
        for hook, (counts, total) in sorted(self.series.items()):
            family.add_metric([hook], list(zip(bounds, accumulate(counts), strict=True)), total[0])
        yield family


HOOK_DURATIONS = _HookDurations()
REGISTRY.register(HOOK_DURATIONS)


class _TargetRequests:
    """gateway_upstream_target_requests_total{upstream,target,outcome}, kept
    as plain counts: one addition per attempt (up to one per backend call of
    every request), where a prometheus_client Counter takes a lock."""

    def __init__(self) -> None:
        self.series: dict[tuple[str, str], list[int]] = {}

    def counts(self, upstream: str, target: str) -> list[int]:
        """[successes, failures] of one target, the same list for its lifetime."""
        return self.series.setdefault((upstream, target), [0, 0])

    def forget(self, upstream: str, target: str) -> None:
        self.series.pop((upstream, target), None)

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "gateway_upstream_target_requests",
            "Calls (attempts) to one target of an upstream: success, or failure (a"
            " connection error, a timeout, or a 502/503/504 answer).",
            labels=["upstream", "target", "outcome"],
        )
        if _enabled:
            for (upstream, target), (ok, failed) in sorted(self.series.items()):
                family.add_metric([upstream, target, "success"], ok)
                family.add_metric([upstream, target, "failure"], failed)
        yield family


UPSTREAM_TARGET_REQUESTS = _TargetRequests()
REGISTRY.register(UPSTREAM_TARGET_REQUESTS)


def observe_hook(hook: str, seconds: float) -> None:
    if _enabled:
        HOOK_DURATIONS.observe(hook, seconds)


def _unrecorded(seconds: float) -> None:
    return None


def hook_timer(hook: str) -> Callable[[float], None]:
    """What records `hook`'s durations in gateway_hook_duration_seconds
    (nothing with METRICS=off)."""
    return HOOK_DURATIONS.timer(hook) if _enabled else _unrecorded


def render() -> bytes:
    return generate_latest()
