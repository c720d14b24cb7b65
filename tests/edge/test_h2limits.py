"""Frame budgets of one HTTP/2 connection (gateway/edge/h2limits.py)."""

from __future__ import annotations

import time

import pytest

from gateway.edge.h2limits import BUDGETS, Budget, FrameBudgets, PenaltyBox


def test_a_burst_then_refusal() -> None:
    budget = Budget(3, 0.0)
    assert [budget.spend() for _ in range(5)] == [True, True, True, False, False]


def test_the_budget_refills_with_time(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    budget = Budget(2, 10.0)
    assert budget.spend() and budget.spend() and not budget.spend()
    now[0] += 0.15  # one token back (and half of another)
    assert budget.spend() and not budget.spend()
    now[0] += 60  # never more than the burst
    assert sum(budget.spend() for _ in range(10)) == 2


def test_each_kind_has_its_own_budget() -> None:
    budgets = FrameBudgets()
    ping, _ = BUDGETS["ping"]
    assert all(budgets.spend("ping") for _ in range(int(ping)))
    assert not budgets.spend("ping")
    assert budgets.spend("settings")


def test_penalties_grow_for_repeat_offenders(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    box = PenaltyBox(size=2)
    assert box.add("10.0.0.1") == 2.0 and box.holds("10.0.0.1")
    now[0] += 2.5
    assert not box.holds("10.0.0.1")
    assert box.add("10.0.0.1") == 4.0  # again within a minute: twice as long
    assert [box.add("10.0.0.1") for _ in range(6)][-1] == 60.0  # capped
    now[0] += 200
    assert box.add("10.0.0.1") == 2.0  # forgotten
    box.add("10.0.0.2")
    box.add("10.0.0.3")  # the box is full: the oldest goes
    assert not box.holds("10.0.0.1") and box.holds("10.0.0.3")
