"""MEMORY_BUDGET's accounting (gateway/stores/memory_budget.py)."""

from __future__ import annotations

import asyncio
import tracemalloc

import orjson
import pytest

from gateway.observe import metrics
from gateway.stores.memory_budget import Expectation, MemoryBudget, parsed_cost

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


async def test_requests_are_admitted_in_turn_with_what_their_route_needs() -> None:
    budget = MemoryBudget(1000)
    first, second, third = (budget.hold(soon(5)) for _ in range(3))
    assert await first.admit(600)
    waiting = asyncio.create_task(second.admit(600))
    await asyncio.sleep(0.01)
    assert not waiting.done() and budget.waiting == 1
    late = asyncio.create_task(third.admit(100))  # it would fit, but second came first
    await asyncio.sleep(0.01)
    assert not late.done()
    first.release()
    assert await waiting and await late
    assert budget.used == 700


async def test_within_its_reservation_a_request_never_waits() -> None:
    budget = MemoryBudget(1000)
    admitted, other = budget.hold(soon(5)), budget.hold(soon(5))
    assert await admitted.admit(600)
    assert await other.take(400)  # the rest of the budget
    assert await admitted.take(500) and await admitted.take(100)  # all inside its 600
    assert budget.used == 1000
    admitted.give(500)
    assert budget.used == 1000  # reserved: it keeps its 600 until its answer is made
    admitted.keep(50)  # the answer alone stays
    assert admitted.charged == 50 and budget.used == 450


async def test_past_its_reservation_only_the_oldest_request_waits() -> None:
    budget = MemoryBudget(1000)
    oldest, younger = budget.hold(soon(5)), budget.hold(soon(5))
    assert await oldest.take(500) and await younger.take(500)
    refused = metrics.MEMORY_BUDGET_REJECTIONS._value.get()
    assert not await younger.take(100)  # it gives way at once ...
    assert metrics.MEMORY_BUDGET_REJECTIONS._value.get() == refused + 1
    waits = asyncio.create_task(oldest.take(100))  # ... the oldest waits
    await asyncio.sleep(0.01)
    assert not waits.done()
    younger.release()  # its request failed: what it held goes back
    assert await waits and oldest.held == 600


async def test_the_sixteen_at_once_case_finishes_in_turn() -> None:
    """Everybody taking a little, nobody able to finish: the oldest waits,
    the others give way, and the first one done teaches the route its size,
    so that the next ones are admitted one at a time and all finish."""
    budget = MemoryBudget(1000)
    expected = Expectation()

    async def request(i: int) -> bool:
        hold = budget.hold(soon(5))
        try:
            if not await hold.admit(expected.value):
                return False
            for _ in range(3):
                if not await hold.take(250):
                    return False
                await asyncio.sleep(0.005)
            expected.observe(hold.peak)
            return True
        finally:
            hold.release()

    first = await asyncio.gather(*(request(i) for i in range(16)))
    assert first.count(True) >= 1  # never all failing
    assert expected.value == 750
    second = await asyncio.gather(*(request(i) for i in range(16)))
    assert second == [True] * 16  # admitted in turn, one at a time: every one finishes
    assert budget.used == 0


async def test_a_request_that_could_never_fit_is_refused_at_once() -> None:
    budget = MemoryBudget(1000)
    hold = budget.hold(soon(5))
    assert await hold.take(700)
    assert not await hold.take(400)  # 1,100 alone: waiting would change nothing
    assert budget.waiting == 0 and hold.held == 700


async def test_a_wait_ends_before_the_route_deadline() -> None:
    budget = MemoryBudget(1000)
    holder, late = budget.hold(soon(5)), budget.hold(soon(0.2))
    assert await holder.take(1000)
    started = asyncio.get_running_loop().time()
    assert not await late.admit(10)
    assert 0.1 < asyncio.get_running_loop().time() - started < 0.2  # before its deadline
    assert budget.waiting == 0 and budget.used == 1000


async def test_a_cancelled_waiter_takes_nothing() -> None:
    budget = MemoryBudget(1000)
    holder, waiter = budget.hold(soon(5)), budget.hold(soon(5))
    assert await holder.take(900)
    waiting = asyncio.create_task(waiter.admit(500))
    await asyncio.sleep(0.01)
    holder.release()  # grants the waiter ...
    waiting.cancel()  # ... just as its request is cancelled
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert budget.used == 0 and waiter.charged == 0


def test_the_expectation_learns_fast_and_forgets_slowly() -> None:
    expected = Expectation()
    expected.observe(1000)
    assert expected.value == 1000
    expected.observe(100)
    assert expected.value == 910
    expected.observe(5000)
    assert expected.value == 5000
