"""In-process token buckets (gateway/stores/limiter_memory.py)."""

from __future__ import annotations

import asyncio

import pytest

from gateway.stores.limiter import Decision, decision_for
from gateway.stores.limiter_memory import MemoryLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr("gateway.stores.limiter_memory.time.monotonic", fake)
    return fake


async def test_burst_then_refill(clock: Clock) -> None:
    limiter = MemoryLimiter()
    decisions = [await limiter.acquire("k", capacity=3, rate=1.0) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    assert decisions[0].reset_after == 1 and decisions[2].reset_after == 3
    assert decisions[3].retry_after == 1
    clock.now += 0.5
    assert not (await limiter.acquire("k", 3, 1.0)).allowed
    clock.now += 0.5
    assert (await limiter.acquire("k", 3, 1.0)).allowed


async def test_exact_under_concurrency() -> None:
    limiter = MemoryLimiter()
    results = await asyncio.gather(*(limiter.acquire("k", 50, 1 / 3600) for _ in range(200)))
    assert sum(d.allowed for d in results) == 50


async def test_full_buckets_are_dropped(clock: Clock) -> None:
    limiter = MemoryLimiter()
    for i in range(100):
        await limiter.acquire(f"client-{i}", capacity=5, rate=1.0)
    await limiter.acquire("busy", capacity=5, rate=0.001)
    clock.now += 2  # every client bucket is full again; "busy" is not
    limiter.expire_all()
    assert len(limiter) == 1


async def test_refilled_buckets_are_forgotten_by_ordinary_decisions(clock: Clock) -> None:
    """No sweep: each decision looks at a few due buckets, so a flood of
    one-off keys is gone soon after it refilled, while live buckets stay."""
    limiter = MemoryLimiter()
    for i in range(20_000):
        await limiter.acquire(f"flood-{i}", capacity=2, rate=1.0)
    for _ in range(3):
        await limiter.acquire("steady", capacity=3, rate=0.01)
    assert len(limiter) == 20_001
    clock.now += 5
    for _ in range(5_000):  # the steady client keeps asking
        await limiter.acquire("steady", capacity=1_000_000, rate=1_000_000.0)
        clock.now += 0.001
    assert len(limiter) == 1


async def test_a_bucket_used_again_is_rescheduled_not_dropped(clock: Clock) -> None:
    limiter = MemoryLimiter()
    assert (await limiter.acquire("k", capacity=2, rate=1.0)).remaining == 1
    clock.now += 0.9
    assert (await limiter.acquire("k", capacity=2, rate=1.0)).remaining == 0  # 1.9 tokens - 1
    clock.now += 0.2  # its first wheel slot is due, but it is not full yet
    limiter.expire_all()
    assert len(limiter) == 1
    decision = await limiter.acquire("k", capacity=2, rate=1.0)
    assert decision.allowed and decision.remaining == 0
    clock.now += 10
    limiter.expire_all()
    assert len(limiter) == 0


@pytest.mark.parametrize(
    ("tokens", "expected"),
    [
        (4.0, Decision(True, 4, 1, 1)),
        (0.0, Decision(True, 0, 5, 1)),
        (0.25, Decision(False, 0, 5, 1)),
    ],
)
def test_decision_numbers(tokens: float, expected: Decision) -> None:
    assert decision_for(expected.allowed, tokens, capacity=5, rate=1.0) == expected


def test_retry_after_is_at_least_one_second_and_rounds_up() -> None:
    assert decision_for(False, 0.0, capacity=10, rate=10.0).retry_after == 1
    assert decision_for(False, 0.0, capacity=1, rate=1 / 60).retry_after == 60
    assert decision_for(False, 0.5, capacity=1, rate=1 / 60).retry_after == 30
