"""Circuit breakers, retry budgets, back-off (gateway/upstream/attempts.py)."""

from __future__ import annotations

import asyncio

import pytest

from gateway.observe.trace import CallTarget, continue_or_start
from gateway.routes.model import CircuitBreaker as BreakerSpec
from gateway.routes.model import Retries, Upstream
from gateway.upstream.attempts import (
    CircuitBreaker,
    RetryBudget,
    Traced,
    UpstreamGuard,
    backoff_delay,
    call_guarded,
)


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr("gateway.upstream.attempts.time.monotonic", fake)
    return fake


def test_breaker_opens_after_consecutive_failures(clock: Clock) -> None:
    breaker = CircuitBreaker("u", BreakerSpec(failures=3, cooldown=10))
    for _ in range(2):
        assert breaker.admit() is False  # admitted, not a trial
        breaker.record(success=False, trial=False)
    breaker.record(success=True, trial=False)  # not consecutive: starts again
    for _ in range(3):
        assert breaker.admit() is False
        breaker.record(success=False, trial=False)
    assert breaker.is_open and breaker.admit() is None


def test_half_open_lets_one_trial_through(clock: Clock) -> None:
    breaker = CircuitBreaker("u", BreakerSpec(failures=1, cooldown=10))
    breaker.record(success=False, trial=False)
    clock.now += 9.9
    assert breaker.admit() is None
    clock.now += 0.1
    assert breaker.admit() is True  # the trial
    assert breaker.admit() is None  # only one at a time
    breaker.record(success=False, trial=True)  # the trial failed: open again, for a full cooldown
    clock.now += 5
    assert breaker.admit() is None
    clock.now += 5
    assert breaker.admit() is True
    breaker.record(success=True, trial=True)
    assert not breaker.is_open and breaker.admit() is False and breaker.admit() is False


def test_a_call_from_before_the_opening_cannot_free_a_second_trial(clock: Clock) -> None:
    breaker = CircuitBreaker("u", BreakerSpec(failures=1, cooldown=10))
    assert breaker.admit() is False  # goes out while the circuit is closed ...
    assert breaker.admit() is False
    breaker.record(success=False, trial=False)  # ... the other one opens it
    clock.now += 10
    assert breaker.admit() is True  # the trial
    breaker.record(success=True, trial=False)  # the old call ends: it decides nothing
    assert breaker.is_open and breaker.trial_in_flight
    assert breaker.admit() is None  # still exactly one trial
    breaker.record(success=False, trial=False)
    assert breaker.admit() is None
    breaker.record(success=True, trial=True)
    assert not breaker.is_open


def test_cancelled_trial_frees_the_slot(clock: Clock) -> None:
    breaker = CircuitBreaker("u", BreakerSpec(failures=1, cooldown=1))
    breaker.record(success=False, trial=False)
    clock.now += 1
    assert breaker.admit() is True
    breaker.release(trial=False)  # not the trial: changes nothing
    assert breaker.admit() is None
    breaker.release(trial=True)
    assert breaker.admit() is True


def test_retry_budget_caps_retries_at_ten_percent(clock: Clock) -> None:
    budget = RetryBudget()
    granted = 0
    for _ in range(1000):  # a failing upstream under load: every call wants a retry
        budget.record_request()
        granted += budget.try_retry()
    assert granted <= 1000 * RetryBudget.PERCENT + RetryBudget.RESERVE
    assert granted >= 100


def test_retry_budget_reserve_lets_a_lone_request_retry(clock: Clock) -> None:
    budget = RetryBudget()
    budget.record_request()
    assert budget.try_retry() and budget.try_retry()


def test_retry_budget_window_slides(clock: Clock) -> None:
    budget = RetryBudget()
    budget.record_request()
    granted = 0
    while budget.try_retry():
        granted += 1
    assert granted == RetryBudget.RESERVE + 1  # under 0.1 * 1 + RESERVE
    clock.now += RetryBudget.WINDOW + 1  # the old retries have left the window
    budget.record_request()
    assert budget.try_retry()


def test_backoff_doubles_with_jitter() -> None:
    for retry, ceiling in ((1, 0.1), (2, 0.2), (3, 0.4)):
        delays = [backoff_delay(0.1, retry) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 100


class Attempts:
    """Answers `results` in turn; each is (failed, retryable) for `judge`."""

    def __init__(self, *results: tuple[bool, bool]) -> None:
        self.results = list(results)
        self.calls = 0
        self.discarded: list[tuple[bool, bool]] = []
        self.headers: list[bytes | None] = []

    async def __call__(self, traceparent: bytes | None, target: object) -> tuple[bool, bool]:
        self.calls += 1
        self.headers.append(traceparent)
        return self.results.pop(0)

    async def discard(self, result: tuple[bool, bool]) -> None:
        self.discarded.append(result)


def guard(attempts: int, breaker: BreakerSpec | None = None) -> UpstreamGuard:
    spec = Retries(attempts=attempts, backoff=0.001)
    upstream = Upstream(
        name="u",
        scheme="http",
        host="u",
        port=80,
        base_path="",
        retries=spec,
        circuit_breaker=breaker,
    )
    return UpstreamGuard.for_upstream(upstream)


def same(result: tuple[bool, bool]) -> tuple[bool, bool]:
    return result


async def test_call_guarded_retries_until_a_result_stands() -> None:
    calls = Attempts((True, True), (True, True), (False, False))
    g = guard(3)
    result = await call_guarded(g, calls, same, idempotent=True, discard=calls.discard)
    assert result == (False, False) and calls.calls == 3
    assert calls.discarded == [(True, True), (True, True)]


async def test_call_guarded_stops_at_the_attempt_limit_and_for_non_idempotent() -> None:
    calls = Attempts((True, True), (True, True), (True, True))
    assert await call_guarded(guard(2), calls, same, idempotent=True) == (True, True)
    assert calls.calls == 2
    once = Attempts((True, True), (False, False))
    assert await call_guarded(guard(3), once, same, idempotent=False) == (True, True)
    assert once.calls == 1


async def test_call_guarded_does_not_retry_what_is_not_retryable() -> None:
    calls = Attempts((True, False), (False, False))
    assert await call_guarded(guard(3), calls, same, idempotent=True) == (True, False)
    assert calls.calls == 1


async def test_call_guarded_feeds_the_breaker_and_returns_none_when_it_refuses() -> None:
    g = guard(1, BreakerSpec(failures=2, cooldown=60))
    for _ in range(2):
        await call_guarded(g, Attempts((True, False)), same, idempotent=True)
    assert g.breaker is not None and g.breaker.is_open
    refused = Attempts((False, False))
    assert await call_guarded(g, refused, same, idempotent=True) is None
    assert refused.calls == 0


async def test_call_guarded_releases_a_cancelled_trial() -> None:
    g = guard(1, BreakerSpec(failures=1, cooldown=0))  # half-open at once: one trial may go
    assert g.breaker is not None
    g.breaker.record(success=False, trial=False)

    async def hang(traceparent: bytes | None, target: object) -> tuple[bool, bool]:
        await asyncio.sleep(10)
        return False, False

    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await call_guarded(g, hang, same, idempotent=True)
    assert g.breaker.admit() is True  # the trial slot is free again


async def test_call_guarded_gives_every_attempt_its_own_span() -> None:
    trace = continue_or_start(f"00-{'a' * 32}-{'b' * 16}-01", None)
    trace.calls = []  # recording, as with export on
    calls = Attempts((True, True), (True, True), (False, False))
    target = CallTarget("users", "users.internal", 8080, "GET")

    def describe(result: tuple[bool, bool]) -> tuple[int | None, bool]:
        return (503, True) if result[0] else (200, False)

    traced = Traced(target, describe)
    assert await call_guarded(
        guard(3), calls, same, idempotent=True, trace=trace, traced=traced
    ) == (
        False,
        False,
    )
    span_ids = [h.decode().split("-")[2] for h in calls.headers if h is not None]
    assert len(set(span_ids)) == 3
    assert [(c[0], c[3], c[4], c[5], c[6]) for c in trace.calls] == [
        (span_ids[0], target, 1, 503, True),
        (span_ids[1], target, 2, 503, True),
        (span_ids[2], target, 3, 200, False),
    ]
    assert all(c[1] <= c[2] for c in trace.calls)  # start, end


async def test_a_cancelled_attempt_ends_its_span_as_failed() -> None:
    trace = continue_or_start(None, None)
    trace.calls = []

    async def hang(traceparent: bytes | None, target: object) -> tuple[bool, bool]:
        await asyncio.sleep(10)
        return False, False

    traced: Traced[tuple[bool, bool]] = Traced(
        CallTarget("u", "h", 80, "GET"), lambda r: (200, False)
    )
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await call_guarded(guard(1), hang, same, idempotent=True, trace=trace, traced=traced)
    assert [(c[5], c[6]) for c in trace.calls] == [(None, True)]


async def test_an_open_circuit_sends_calls_to_another_target_and_all_open_refuse() -> None:
    from gateway.routes.model import Target

    upstream = Upstream(
        name="two",
        scheme="http",
        host="a",
        port=80,
        base_path="",
        targets=(Target("a", "a", 80), Target("b", "b", 80)),
        circuit_breaker=BreakerSpec(failures=1, cooldown=60),
        balance="round_robin",
    )
    g = UpstreamGuard.for_upstream(upstream)
    a, b = g.balancer.states
    assert a.breaker is not None and b.breaker is not None
    a.breaker.record(success=False, trial=False)  # a's circuit opens
    seen: list[str] = []

    async def attempt(traceparent: bytes | None, target: object) -> tuple[bool, bool]:
        seen.append(target.name)  # type: ignore[attr-defined]
        return False, False

    for _ in range(4):
        assert await call_guarded(g, attempt, same, idempotent=True) == (False, False)
    assert seen == ["b"] * 4
    b.breaker.record(success=False, trial=False)
    assert await call_guarded(g, attempt, same, idempotent=True) is None  # both open
    assert len(seen) == 4
