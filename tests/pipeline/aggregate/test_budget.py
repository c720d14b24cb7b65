"""MEMORY_BUDGET's accounting (gateway/pipeline/aggregate/budget.py)."""

from __future__ import annotations

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


def test_holds_take_give_and_refuse() -> None:
    budget = MemoryBudget(1000)
    a, b = budget.hold(), budget.hold()
    refused = metrics.MEMORY_BUDGET_REJECTIONS._value.get()
    assert a.take(600) and not b.take(500)
    assert metrics.MEMORY_BUDGET_REJECTIONS._value.get() == refused + 1
    assert b.held == 0 and budget.used == 600
    a.keep(100)  # only the answer stays counted
    assert (a.held, budget.used) == (100, 100)
    assert b.take(900)
    a.release()
    b.release()
    assert budget.used == 0
    b.release()  # twice changes nothing
    assert budget.used == 0
