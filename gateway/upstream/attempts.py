"""Retries and circuit breakers, per upstream and process (SPEC 3.1).

- `RetryBudget` (after Finagle's and Envoy's): retries may add at most
  `PERCENT` of the upstream's recent requests, plus a small reserve so that a
  lone request can still be retried. A failing upstream therefore sees at most
  ~10% extra load from retries, however many clients push at it.
- `CircuitBreaker`: `failures` consecutive failures open it for `cooldown`;
  then one trial request is let through (half-open): its success closes the
  circuit, its failure opens it again. While open, calls fail at once, without
  touching the network. `gateway_circuit_open{upstream}` is 1 until it closes.
- `backoff_delay`: `backoff` doubling per attempt, with jitter.
- `call_guarded`: the one attempt loop (breaker, retries within the budget,
  back-off, a trace span per attempt) that aggregate backends, proxy routes
  and WebSocket handshakes all go through.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from gateway.observe import metrics
from gateway.observe.live import LIVE
from gateway.observe.trace import CallTarget, TraceContext
from gateway.routes.model import CircuitBreaker as BreakerSpec
from gateway.routes.model import Retries, Target, Upstream
from gateway.upstream.streams import StreamSlots
from gateway.upstream.targets import Balancer, Steer, TargetState

__all__ = [
    "CircuitBreaker",
    "RetryBudget",
    "Traced",
    "UpstreamGuard",
    "backoff_delay",
    "call_guarded",
    "is_retryable_status",
    "new_target_state",
]

RETRYABLE_STATUSES = frozenset({502, 503, 504})


def is_retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUSES


def backoff_delay(backoff: float, retry: int) -> float:
    """The pause before retry number `retry` (1, 2, ...): backoff * 2**(retry-1),
    jittered to between half and all of it so that clients do not retry in step."""
    ceiling: float = backoff * 2.0 ** (retry - 1)
    return ceiling * (0.5 + random.random() / 2)  # noqa: S311 (jitter, not a secret)


class RetryBudget:
    """Allow a retry while retries in the last WINDOW seconds stay under
    PERCENT of the requests in that window, plus RESERVE."""

    WINDOW = 10
    PERCENT = 0.1
    RESERVE = 3

    def __init__(self) -> None:
        self._requests = [0] * self.WINDOW
        self._retries = [0] * self.WINDOW
        self._second = [0] * self.WINDOW

    def _slot(self) -> int:
        now = int(time.monotonic())
        slot = now % self.WINDOW
        if self._second[slot] != now:
            self._second[slot], self._requests[slot], self._retries[slot] = now, 0, 0
        return slot

    def _live(self, counts: list[int]) -> int:
        horizon = int(time.monotonic()) - self.WINDOW
        return sum(n for n, second in zip(counts, self._second, strict=True) if second > horizon)

    def record_request(self) -> None:
        self._requests[self._slot()] += 1

    def try_retry(self) -> bool:
        slot = self._slot()
        if self._live(self._retries) >= self._live(self._requests) * self.PERCENT + self.RESERVE:
            return False
        self._retries[slot] += 1
        return True


@dataclass
class CircuitBreaker:
    upstream: str
    spec: BreakerSpec
    failures: int = 0
    opened_at: float | None = None
    trial_in_flight: bool = False

    def admit(self) -> bool | None:
        """May a call go out now? None: no. Otherwise whether this call is the
        half-open trial: exactly one goes out per cooldown."""
        if self.opened_at is None:
            return False
        if self.trial_in_flight or time.monotonic() - self.opened_at < self.spec.cooldown:
            return None
        self.trial_in_flight = True
        return True

    def record(self, success: bool, *, trial: bool) -> None:
        """The result of an admitted call. While the circuit is open, only the
        trial's result counts: a call that went out before the circuit opened
        and ends later neither closes it nor frees the trial's slot."""
        if self.opened_at is not None and not trial:
            return
        self.trial_in_flight = False
        if success:
            self.failures = 0
            if self.opened_at is not None:
                self.opened_at = None
                metrics.CIRCUIT_OPEN.labels(self.upstream).set(0)
            return
        self.failures += 1
        if self.opened_at is not None or self.failures >= self.spec.failures:
            self.opened_at = time.monotonic()  # open, or open again after a failed trial
            metrics.CIRCUIT_OPEN.labels(self.upstream).set(1)

    def release(self, *, trial: bool) -> None:
        """An admitted call ended without an answer either way (it was cancelled)."""
        if trial:
            self.trial_in_flight = False

    @property
    def is_open(self) -> bool:
        return self.opened_at is not None


@dataclass
class UpstreamGuard:
    """Everything that decides whether (and how often, and where) to call one
    upstream: its targets (each with its breaker and health), its retry budget
    and its long-lived stream slots."""

    upstream: str
    retries: Retries
    balancer: Balancer
    streams: StreamSlots
    budget: RetryBudget = field(default_factory=RetryBudget)
    sticky: str | None = None  # "client", "ip" or "header:<name>"
    override: str | None = None  # the override header's lower-case name

    @classmethod
    def for_upstream(
        cls, upstream: Upstream, states: list[TargetState] | None = None
    ) -> UpstreamGuard:
        if states is None:
            states = [new_target_state(upstream, t) for t in upstream.instances]
        streams = StreamSlots(upstream.name, upstream.max_streams)
        metrics.UPSTREAM_STREAMS.labels(upstream.name).set(0)
        return cls(
            upstream.name,
            upstream.retries,
            Balancer(upstream, states),
            streams,
            sticky=upstream.sticky,
            override=upstream.override_header,
        )

    @property
    def breaker(self) -> CircuitBreaker | None:
        """The breaker of a one-target upstream (the dashboard's circuit)."""
        only = self.balancer.only
        return only.breaker if only is not None else None

    def steer(
        self, client: str, identity: str | None, headers: Iterable[tuple[bytes, bytes]]
    ) -> Steer | None:
        """What a request says about its target (None when the upstream has
        neither `sticky` nor `override_header`). `identity` is None on a route
        without auth: the override header counts only where auth passed."""
        sticky, override = self.sticky, self.override
        if sticky is None and override is None:
            return None
        key: bytes | None = None
        named: str | None = None
        wanted = None
        if sticky is not None and sticky.startswith("header:"):
            wanted = sticky.removeprefix("header:").encode()
        name = override.encode() if override is not None and identity is not None else None
        if wanted is not None or name is not None:
            for header, value in headers:
                if header == wanted:
                    key = value
                elif header == name:
                    named = value.decode("latin-1").strip()
        if sticky == "ip":
            key = client.encode()
        elif sticky == "client":
            key = (identity or client).encode()
        return Steer(key, named)


def new_target_state(upstream: Upstream, target: Target) -> TargetState:
    breaker = None
    if upstream.circuit_breaker is not None:
        label = upstream.name if not upstream.targets else f"{upstream.name}/{target.name}"
        breaker = CircuitBreaker(label, upstream.circuit_breaker)
        metrics.CIRCUIT_OPEN.labels(label).set(0)
    return TargetState(upstream, target, breaker)


@dataclass(frozen=True, slots=True)
class Traced[T]:
    """How an upstream's attempts are traced (made once, at load time): who
    they go to, and `describe(result)`: the answer's status (None: no answer)
    and whether the attempt failed (the span's ERROR status)."""

    target: CallTarget
    describe: Callable[[T], tuple[int | None, bool]]


async def call_guarded[T](
    guard: UpstreamGuard,
    attempt: Callable[[bytes | None, TargetState], Awaitable[T]],
    judge: Callable[[T], tuple[bool, bool]],
    *,
    idempotent: bool,
    discard: Callable[[T], Awaitable[None]] | None = None,
    trace: TraceContext | None = None,
    traced: Traced[T] | None = None,
    steer: Steer | None = None,
) -> T | None:
    """Run `attempt` through `guard`: the balancer picks each attempt's target
    (`attempt(traceparent, target)` calls it; a retry goes to another target
    when there is one), the target's circuit breaker decides whether a call may
    go out (an open one sends the call to another target, if any); `judge(result)`
    says whether the upstream failed (for the breaker) and whether the result is
    worth retrying (for retries and the target's passive health), which happens
    for an idempotent request while attempts and the retry budget last, after
    a jittered back-off (a result given up on is `discard`ed first).

    Under a `trace`, every attempt gets its own span (`traced` says what it
    goes to): `attempt(traceparent, target)` sends it as its header; a recorded
    span (export on, the request sampled) ends with the attempt.

    Returns the result that stands, or None when every breaker refused.
    The caller's deadline bounds all of it; a cancelled trial call releases
    the half-open breaker."""
    balancer = guard.balancer
    guard.budget.record_request()
    tries = 0
    tried: set[TargetState] | None = None
    while True:
        target = balancer.pick(steer, tried)
        breaker = target.breaker
        trial = False
        if breaker is not None:
            chosen = _admitted(balancer, target, steer, tried)
            if chosen is None:
                LIVE.call(guard.upstream, failed=True)  # refused by every open circuit
                return None
            target, trial = chosen
            breaker = target.breaker
        tries += 1
        span, header = None, None
        if trace is not None and traced is not None:
            if trace.calls is None:
                header = trace.attempt_header()
            else:
                span = trace.call(traced.target, tries)
                header = span.header
        started = time.perf_counter()
        target.in_flight += 1
        try:
            result = await attempt(header, target)
        except BaseException:
            if breaker is not None:
                breaker.release(trial=trial)
            if span is not None:
                span.end(None, True)
            raise
        finally:
            target.in_flight -= 1
        elapsed = time.perf_counter() - started
        metrics.observe_upstream(guard.upstream, elapsed)
        if span is not None:
            assert traced is not None
            span.end(*traced.describe(result))
        failed, retryable = judge(result)
        LIVE.call(guard.upstream, failed, elapsed)
        balancer.record(target, retryable)
        if breaker is not None:
            breaker.record(success=not failed, trial=trial)
        if not (
            retryable and idempotent and tries < guard.retries.attempts and guard.budget.try_retry()
        ):
            return result
        if discard is not None:
            await discard(result)
        if tried is None:
            tried = set()
        tried.add(target)
        await asyncio.sleep(backoff_delay(guard.retries.backoff, tries))


def _admitted(
    balancer: Balancer, target: TargetState, steer: Steer | None, tried: set[TargetState] | None
) -> tuple[TargetState, bool] | None:
    """`target`, or another one, whose circuit admits a call now, and whether
    the call is its half-open trial; None when no circuit does."""
    refused: set[TargetState] = set()
    while True:
        assert target.breaker is not None  # every target of an upstream has one, or none does
        admitted = target.breaker.admit()
        if admitted is not None:
            return target, admitted
        refused.add(target)
        target = balancer.pick(steer, (tried or set()) | refused)
        if target in refused:  # nothing else left to ask
            return None
