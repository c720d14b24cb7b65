"""Fork/join under a deadline (gateway/pipeline/aggregate/fanout.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from gateway.pipeline.aggregate.fanout import fan_out
from gateway.pipeline.aggregate.outcome import Outcome
from gateway.types import Failure


@dataclass(frozen=True)
class Plan:
    index: int
    name: str
    delay: float = 0.0
    fail: Failure | None = None
    required: bool = True
    deps: tuple[int, ...] = ()


@dataclass
class Recorder:
    started: dict[str, float] = field(default_factory=dict)
    cancelled: list[str] = field(default_factory=list)
    seen: dict[str, list[bool]] = field(default_factory=dict)
    t0: float = field(default_factory=time.perf_counter)

    async def __call__(self, plan: Plan, done: Sequence[Outcome | None]) -> Outcome:
        self.started[plan.name] = time.perf_counter() - self.t0
        self.seen[plan.name] = [done[d] is not None for d in plan.deps]
        try:
            await asyncio.sleep(plan.delay)
        except asyncio.CancelledError:
            self.cancelled.append(plan.name)
            raise
        return Outcome(plan.name, plan.required, body=plan.name, failure=plan.fail)


async def test_independent_backends_run_concurrently() -> None:
    record = Recorder()
    plans = [Plan(i, f"b{i}", delay=0.1) for i in range(3)]
    started = time.perf_counter()
    outcomes = await fan_out(plans, record, deadline=5)
    assert time.perf_counter() - started < 0.15
    assert [o.body for o in outcomes] == ["b0", "b1", "b2"]


async def test_dependent_starts_when_its_dependency_finishes() -> None:
    record = Recorder()
    plans = [
        Plan(0, "user", delay=0.1),
        Plan(1, "account", delay=0.1, deps=(0,)),
        Plan(2, "side", delay=0.15),
    ]
    started = time.perf_counter()
    outcomes = await fan_out(plans, record, deadline=5)
    elapsed = time.perf_counter() - started
    assert all(o.ok for o in outcomes)
    assert record.seen["account"] == [True]
    assert 0.1 <= record.started["account"] < 0.13
    assert 0.2 <= elapsed < 0.25  # the longest chain, not the sum


async def test_required_failure_cancels_the_others_at_once() -> None:
    record = Recorder()
    plans = [
        Plan(0, "slow", delay=5),
        Plan(1, "bad", delay=0.01, fail=Failure.STATUS),
        Plan(2, "after", delay=5, deps=(0,)),
    ]
    started = time.perf_counter()
    outcomes = await fan_out(plans, record, deadline=10)
    assert time.perf_counter() - started < 0.1
    assert [o.failure for o in outcomes] == [Failure.CANCELLED, Failure.STATUS, Failure.CANCELLED]
    assert "slow" in record.cancelled


async def test_optional_failure_does_not_cancel() -> None:
    plans = [Plan(0, "a", delay=0.05), Plan(1, "b", fail=Failure.CONNECT, required=False)]
    outcomes = await fan_out(plans, Recorder(), deadline=5)
    assert outcomes[0].ok
    assert outcomes[1].failure is Failure.CONNECT


@pytest.mark.parametrize("count", [1, 3])
async def test_route_deadline_ends_unfinished_backends_as_timeouts(count: int) -> None:
    plans = [Plan(0, "fast", delay=0.01)] * (count > 1) + [Plan(count - 1, "slow", delay=5)]
    plans = [Plan(i, p.name, p.delay) for i, p in enumerate(plans)]
    started = time.perf_counter()
    outcomes = await fan_out(plans, Recorder(), deadline=0.1)
    assert time.perf_counter() - started < 0.2
    assert outcomes[-1].failure is Failure.TIMEOUT
    if count > 1:
        assert outcomes[0].ok


async def test_caller_cancellation_reaches_every_backend() -> None:
    record = Recorder()
    plans = [Plan(i, f"b{i}", delay=5) for i in range(3)]
    task = asyncio.create_task(fan_out(plans, record, deadline=10))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sorted(record.cancelled) == ["b0", "b1", "b2"]
