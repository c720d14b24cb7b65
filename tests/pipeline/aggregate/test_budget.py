"""MEMORY_BUDGET's accounting (gateway/pipeline/aggregate/budget.py)."""

from __future__ import annotations

import asyncio
import tracemalloc

import orjson
import pytest

from gateway.observe import metrics
from gateway.pipeline.aggregate.budget import MemoryBudget, parsed_cost

SHAPES = {
    "objects": [
        {"id": i, "name": f"user{i}", "email": f"u{i}@example.com", "ok": True} for i in range(5000)
    ],
    "empty objects": [{} for _ in range(5000)],
    "nested": [{"a": {"b": {"c": [1, 2, {"d": "x"}]}}} for _ in range(2000)],
    "numbers": [i * 1.5 for i in range(20000)],
    "long string": {"blob": "y" * 1_000_000},
    "non-ascii": ["é€😀" * 4 for _ in range(5000)],
    "mixed wide string": {"s": "😀" + "a" * 100_000},
}


@pytest.mark.parametrize("name", SHAPES)
def test_parsed_cost_never_underestimates(name: str) -> None:
    data = orjson.dumps(SHAPES[name])
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    parsed = orjson.loads(data)
    real = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert parsed is not None
    total, containers = parsed_cost(data)
    assert real <= total <= max(real * 6, 4096)
    assert containers <= total


async def test_holds_take_give_and_refuse() -> None:
    budget = MemoryBudget(1000)
    a, b = budget.hold(), budget.hold()
    refused = metrics.MEMORY_BUDGET_REJECTIONS._value.get()
    assert await a.take(600) and not await b.take(500)  # no deadline: no waiting
    assert metrics.MEMORY_BUDGET_REJECTIONS._value.get() == refused + 1
    assert b.held == 0 and budget.used == 600
    a.keep(100)  # only the answer stays counted
    assert (a.held, budget.used) == (100, 100)
    assert await b.take(900)
    a.release()
    b.release()
    assert budget.used == 0
    b.release()  # twice changes nothing
    assert budget.used == 0


def soon(seconds: float) -> float:
    return asyncio.get_running_loop().time() + seconds


async def test_a_request_that_does_not_fit_waits_its_turn() -> None:
    budget = MemoryBudget(1000)
    first, second = budget.hold(soon(5)), budget.hold(soon(5))
    assert await first.take(800)
    waiting = asyncio.create_task(second.take(500))
    await asyncio.sleep(0.01)
    assert not waiting.done() and budget.waiting == 1
    first.release()
    assert await waiting and second.held == 500 and budget.used == 500


async def test_younger_requests_leave_room_for_an_older_waiter() -> None:
    budget = MemoryBudget(1000)
    old, big, young = budget.hold(soon(5)), budget.hold(soon(5)), budget.hold(soon(5))
    assert await old.take(600)
    big_waits = asyncio.create_task(big.take(700))
    await asyncio.sleep(0.01)
    # 300 are free, but the older waiter needs 700 of what is given back.
    young_waits = asyncio.create_task(young.take(300))
    await asyncio.sleep(0.01)
    assert not young_waits.done()
    old.release()
    assert await big_waits and await young_waits  # in that order, both fit now
    assert budget.used == 1000


async def test_a_younger_request_holding_memory_gives_way_to_an_older_waiter() -> None:
    """The sixteen-at-once case: everybody holding a little, nobody able to
    finish. The oldest waits; the younger ones that hold memory fail at once
    and give it back, so the oldest finishes."""
    budget = MemoryBudget(1000)
    holds = [budget.hold(soon(5)) for _ in range(4)]
    for hold in holds:
        assert await hold.take(250)  # the budget is spent, a quarter each
    waits = [asyncio.create_task(h.take(400)) for h in holds]  # each needs more
    await asyncio.sleep(0.01)
    results = [w.done() and w.result() for w in waits]
    assert results[1:] == [False, False, False]  # the younger gave way at once
    for hold, given_way in zip(holds[1:], results[1:], strict=True):
        assert not given_way
        hold.release()  # their requests fail, and give back what they held
    assert await waits[0]  # the oldest gets what it needs
    assert holds[0].held == 650


async def test_a_wait_ends_before_the_route_deadline() -> None:
    budget = MemoryBudget(1000)
    holder, late = budget.hold(soon(5)), budget.hold(soon(0.2))
    assert await holder.take(1000)
    started = asyncio.get_running_loop().time()
    assert not await late.take(10)
    assert 0.1 < asyncio.get_running_loop().time() - started < 0.2  # before its deadline
    assert budget.waiting == 0 and budget.used == 1000


async def test_a_cancelled_waiter_takes_nothing() -> None:
    budget = MemoryBudget(1000)
    holder, waiter = budget.hold(soon(5)), budget.hold(soon(5))
    assert await holder.take(900)
    waiting = asyncio.create_task(waiter.take(500))
    await asyncio.sleep(0.01)
    holder.release()  # grants the waiter ...
    waiting.cancel()  # ... just as its request is cancelled
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert budget.used == 0 and waiter.held == 0
