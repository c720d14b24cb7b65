"""The export queue and thread (gateway/observe/export.py), with a fake client
in place of the collector; the real exporter's client must still be there."""

from __future__ import annotations

import random
import time

import pytest
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, TraceIdRatioBased

from gateway.observe import metrics
from gateway.observe.export import Exporter, _Client, _resource, decision
from gateway.observe.otlp import SpanEncoder
from gateway.observe.trace import ServerRecord


class FakeClient:
    def __init__(self, ok: bool = True) -> None:
        self.ok = ok
        self.batches: list[bytes] = []
        self.endpoint = "fake"

    def send(self, data: bytes) -> bool:
        self.batches.append(data)
        return self.ok

    def shutdown(self) -> None:
        pass


def record() -> ServerRecord:
    return ServerRecord(
        "a" * 32, "b" * 16, None, None, 1, 2, "GET", None, "/x", "127.0.0.1", 200, []
    )


def errors() -> float:
    return float(metrics.TRACE_EXPORT_ERRORS._value.get())


def exporter(client: FakeClient, monkeypatch: pytest.MonkeyPatch, **env: str) -> Exporter:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Exporter(ALWAYS_ON, SpanEncoder({}, "gateway"), client)  # type: ignore[arg-type]


def test_the_pinned_exporter_still_has_the_client_this_uses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    client = _Client()
    assert client.endpoint == "http://127.0.0.1:9/v1/traces"
    client.shutdown()


def test_a_full_queue_drops_and_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    e = exporter(FakeClient(), monkeypatch, OTEL_BSP_MAX_QUEUE_SIZE="3")
    before = errors()
    for _ in range(5):
        e.submit(record())  # not started: nothing leaves the queue
    assert errors() - before == 2


def test_batches_leave_on_time_and_refused_ones_are_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = FakeClient(ok=False)
    e = exporter(
        client, monkeypatch, OTEL_BSP_SCHEDULE_DELAY="10", OTEL_BSP_MAX_EXPORT_BATCH_SIZE="4"
    )
    before = errors()
    e.start()
    for _ in range(10):
        e.submit(record())
    deadline = time.monotonic() + 5
    while errors() - before < 10 and time.monotonic() < deadline:
        time.sleep(0.01)
    e.stop()
    assert errors() - before == 10 and len(client.batches) >= 3  # 4 + 4 + 2


def test_sampling_follows_the_parent_and_the_ratio() -> None:
    parent_based = Exporter(ParentBased(ALWAYS_ON), SpanEncoder({}, "g"), FakeClient())  # type: ignore[arg-type]
    assert parent_based.sample("a" * 32, "b" * 16, True)
    assert not parent_based.sample("a" * 32, "b" * 16, False)
    assert parent_based.sample("a" * 32, None, False)  # a new trace: the root sampler
    never = Exporter(TraceIdRatioBased(0.0), SpanEncoder({}, "g"), FakeClient())  # type: ignore[arg-type]
    assert not never.sample("a" * 32, None, True)


def test_the_service_is_called_gateway_unless_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    assert _resource().attributes["service.name"] == "gateway"
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attributes")
    assert _resource().attributes["service.name"] == "from-attributes"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "edge")
    assert _resource().attributes["service.name"] == "edge"


SAMPLERS = [
    ("always_on", ""),
    ("always_off", ""),
    ("traceidratio", "0.25"),
    ("traceidratio", ""),
    ("parentbased_always_on", ""),
    ("parentbased_always_off", ""),
    ("parentbased_traceidratio", "0.1"),
]


@pytest.mark.parametrize(("name", "arg"), SAMPLERS)
def test_the_plain_decision_is_the_sdks(
    name: str, arg: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", name)
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", arg)
    from opentelemetry.sdk.trace import TracerProvider

    sdk = Exporter(
        TracerProvider(shutdown_on_exit=False).sampler,
        SpanEncoder({}, "g"),
        FakeClient(),  # type: ignore[arg-type]
    )
    decide = decision(name, arg)
    rng = random.Random(13)
    outcomes = set()
    for _ in range(3000):
        trace_id = f"{rng.getrandbits(128) or 1:032x}"
        parent = rng.choice([None, True, False])
        parent_id = None if parent is None else "b" * 16
        expected = sdk.ask_sampler(trace_id, parent_id, bool(parent))
        assert decide(trace_id, parent) == expected, (trace_id, parent)
        outcomes.add(expected)
    both = {True, False}
    expected_outcomes = {
        "always_on": {True},
        "always_off": {False},
        "traceidratio": both if arg else {True},  # no ratio given: 1.0
    }.get(name, both)  # parent-based: the caller's flag decides either way
    assert outcomes == expected_outcomes
