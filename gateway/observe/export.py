"""OpenTelemetry export (SPEC 3.13), on when OTEL_EXPORTER_OTLP_ENDPOINT or
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set. Nothing imports this module (or the
SDK) otherwise.

The official SDK supplies what OpenTelemetry defines and operators know:

- the sampler, from OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG, decided
  once per request (the CLIENT spans follow their SERVER span, as every
  built-in sampler would decide for them). The six samplers those variables
  can name (settings.py admits no other) decide from the trace id and the
  caller's flag alone, so `decision()` makes each a plain function with the
  SDK's own ratio bound: a tenth of the SDK call's cost, and
  tests/observe/test_export.py checks it against the SDK's sampler;
- the resource: OTEL_SERVICE_NAME (default `gateway`) and
  OTEL_RESOURCE_ATTRIBUTES;
- the OTLP/HTTP exporter's client: the endpoint, OTEL_EXPORTER_OTLP_HEADERS,
  _TIMEOUT, _COMPRESSION, certificates, and its retries with back-off.

The gateway keeps the recording and the encoding (gateway/observe/trace.py and
otlp.py): a sampled request hands one tuple to `Exporter.submit`, which costs
a list append; a thread of its own wakes every OTEL_BSP_SCHEDULE_DELAY ms (or
once OTEL_BSP_MAX_EXPORT_BATCH_SIZE spans wait), encodes the batch and posts
it. At most OTEL_BSP_MAX_QUEUE_SIZE spans wait; past that, and for every batch
the collector did not take, the spans are counted in
`gateway_trace_export_errors_total` and dropped. A collector that is down or
slow therefore costs requests nothing: they never wait for it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.environment_variables import (
    OTEL_BSP_MAX_EXPORT_BATCH_SIZE,
    OTEL_BSP_MAX_QUEUE_SIZE,
    OTEL_BSP_SCHEDULE_DELAY,
)
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import Sampler, TraceIdRatioBased
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    TraceFlags,
    set_span_in_context,
)
from opentelemetry.version import __version__ as _SDK_VERSION

from gateway.observe import metrics
from gateway.observe.otlp import SpanEncoder
from gateway.observe.trace import ServerRecord

__all__ = ["Exporter", "start_export"]

logger = logging.getLogger("gateway")

_SAMPLED, _NOT_SAMPLED = TraceFlags(TraceFlags.SAMPLED), TraceFlags(TraceFlags.DEFAULT)
_SHUTDOWN_SECONDS = 2.0  # a last flush at exit waits at most this long


def _env_int(name: str, default: int) -> int:
    """OTEL_BSP_* as the SDK reads them (settings.py has already refused bad ones)."""
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


class _Client:
    """The OTLP/HTTP exporter's transport, configured by the OTEL_* variables.

    `OTLPSpanExporter.export()` takes SDK span objects and encodes them with
    the SDK's encoder, which is what this module avoids (otlp.py says why);
    its client, which takes the encoded request, is `_client`. The exporter's
    version is pinned in requirements.lock and tests/observe/test_export.py
    checks that it still has one."""

    def __init__(self) -> None:
        self.exporter = OTLPSpanExporter()
        client = getattr(self.exporter, "_client", None)
        if client is None or not callable(getattr(client, "export", None)):
            raise RuntimeError(
                "this opentelemetry-exporter-otlp-proto-http has no _client.export: "
                "install the version requirements.lock pins"
            )
        self._client: Any = client
        self.endpoint: str = self.exporter._endpoint

    def send(self, data: bytes) -> bool:
        return bool(self._client.export(data).success)

    def shutdown(self) -> None:
        self.exporter.shutdown()  # type: ignore[no-untyped-call]


# A sampling decision: (the trace id, the caller's sampled flag or None for a
# new trace) -> sampled.
type Decision = Callable[[str, bool | None], bool]


def decision(name: str, arg: str) -> Decision:
    """What OTEL_TRACES_SAMPLER `name` (with OTEL_TRACES_SAMPLER_ARG `arg`)
    decides, as the SDK defines it: `traceidratio` samples when the trace id's
    lower 64 bits are below the rate's bound; `parentbased_*` follows a
    caller's flag and asks its root sampler for new traces."""
    root = name.removeprefix("parentbased_")
    if root == "always_on":
        decide_root: Callable[[str], bool] = lambda trace_id: True  # noqa: E731
    elif root == "always_off":
        decide_root = lambda trace_id: False  # noqa: E731
    elif root == "traceidratio":
        bound = TraceIdRatioBased.get_bound_for_rate(float(arg) if arg.strip() else 1.0)
        decide_root = lambda trace_id: int(trace_id[16:], 16) < bound  # noqa: E731
    else:
        raise ValueError(f"unknown sampler {name!r}")
    if root == name:
        return lambda trace_id, parent: decide_root(trace_id)
    return lambda trace_id, parent: decide_root(trace_id) if parent is None else parent


class Exporter:
    """The SpanSink of gateway/observe/trace.py: samples requests, queues the
    sampled ones, and exports them in batches from its own thread. Without a
    `decide`, every request asks the SDK `sampler`."""

    def __init__(
        self,
        sampler: Sampler,
        encoder: SpanEncoder,
        client: _Client,
        decide: Decision | None = None,
    ) -> None:
        self.sampler = sampler
        self.decide = decide
        self.encoder = encoder
        self.client = client
        self.delay = _env_int(OTEL_BSP_SCHEDULE_DELAY, 5000) / 1000
        self.max_queue = _env_int(OTEL_BSP_MAX_QUEUE_SIZE, 2048)
        self.batch_size = min(_env_int(OTEL_BSP_MAX_EXPORT_BATCH_SIZE, 512), self.max_queue)
        self._queue: list[ServerRecord] = []
        self._queued_spans = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="otlp-export", daemon=True)

    # --- on the event loop: per request ---------------------------------------------
    def sample(self, trace_id: str, parent_id: str | None, parent_sampled: bool) -> bool:
        if self.decide is not None:
            return self.decide(trace_id, None if parent_id is None else parent_sampled)
        return self.ask_sampler(trace_id, parent_id, parent_sampled)

    def ask_sampler(self, trace_id: str, parent_id: str | None, parent_sampled: bool) -> bool:
        """The SDK sampler's decision, through its API."""
        parent = None
        if parent_id is not None:
            flags = _SAMPLED if parent_sampled else _NOT_SAMPLED
            remote = SpanContext(int(trace_id, 16), int(parent_id, 16), True, flags)
            parent = set_span_in_context(NonRecordingSpan(remote))
        result = self.sampler.should_sample(parent, int(trace_id, 16), "", SpanKind.SERVER)
        return bool(result.decision.is_sampled())  # type: ignore[no-untyped-call]

    def submit(self, record: ServerRecord) -> None:
        spans = 1 + len(record.calls)
        with self._lock:
            queued = self._queued_spans + spans
            if queued <= self.max_queue:
                self._queue.append(record)
                self._queued_spans = queued
        if queued > self.max_queue:
            metrics.TRACE_EXPORT_ERRORS.inc(spans)
        elif queued >= self.batch_size and not self._wake.is_set():
            self._wake.set()

    # --- the export thread --------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def _take(self) -> list[ServerRecord]:
        """Up to a batch of queued requests (at least one, when any wait)."""
        with self._lock:
            taken, spans = 0, 0
            for record in self._queue:
                count = 1 + len(record.calls)
                if taken and spans + count > self.batch_size:
                    break
                taken, spans = taken + 1, spans + count
            batch = self._queue[:taken]
            del self._queue[:taken]
            self._queued_spans -= spans
        return batch

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self.delay)
            self._wake.clear()
            self._flush()

    def _flush(self, deadline: float | None = None) -> None:
        while batch := self._take():
            spans = sum(1 + len(record.calls) for record in batch)
            try:
                data, _ = self.encoder.encode(batch)  # the same count as above
                sent = self.client.send(data)
            except Exception:  # nothing may end this thread
                logger.exception("trace export failed")
                sent = False
            if not sent:
                metrics.TRACE_EXPORT_ERRORS.inc(spans)
            if deadline is not None and time.monotonic() > deadline:
                break

    def stop(self) -> None:
        """At shutdown: one last flush, bounded in time; what is left is dropped."""
        self._stopping = True
        self._wake.set()
        self._thread.join(_SHUTDOWN_SECONDS)
        if not self._thread.is_alive():
            self._flush(deadline=time.monotonic() + _SHUTDOWN_SECONDS)
        with self._lock:
            left = self._queued_spans
            self._queue.clear()
            self._queued_spans = 0
        if left:
            metrics.TRACE_EXPORT_ERRORS.inc(left)
        self.client.shutdown()


def _resource() -> Resource:
    """OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME, with `gateway` as the
    service's name when neither names it."""
    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: "gateway"}))
    return resource


def start_export() -> Exporter:
    """Build the exporter from the OTEL_* variables and start its thread."""
    sampler = TracerProvider(shutdown_on_exit=False).sampler  # OTEL_TRACES_SAMPLER(_ARG)
    decide = decision(
        os.environ.get("OTEL_TRACES_SAMPLER", "").strip().lower() or "parentbased_always_on",
        os.environ.get("OTEL_TRACES_SAMPLER_ARG", ""),
    )
    attributes: dict[str, Any] = dict(_resource().attributes)
    encoder = SpanEncoder(attributes, "gateway")
    exporter = Exporter(sampler, encoder, _Client(), decide)
    exporter.start()
    logger.info(
        "trace export on: OTLP/HTTP to %s, sampler %s (OpenTelemetry SDK %s)",
        exporter.client.endpoint,
        sampler.get_description(),
        _SDK_VERSION,
    )
    return exporter
