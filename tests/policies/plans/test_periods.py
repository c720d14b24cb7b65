"""Calendar periods in UTC (gateway/policies/plans/periods.py)."""

from __future__ import annotations

import calendar

import pytest

from gateway.policies.plans.periods import current_period

NOW = calendar.timegm((2026, 12, 7, 13, 45, 10))


@pytest.mark.parametrize(
    ("kind", "ends"),
    [
        ("hour", (2026, 12, 7, 14, 0, 0)),
        ("day", (2026, 12, 8, 0, 0, 0)),
        ("month", (2027, 1, 1, 0, 0, 0)),
    ],
)
def test_each_period_ends_at_its_calendar_boundary(kind: str, ends: tuple[int, ...]) -> None:
    name, end = current_period(kind, NOW)
    assert end == calendar.timegm(ends)
    assert name.startswith(kind + ":")
    assert current_period(kind, end - 1)[0] == name  # the same period to its last second
    assert current_period(kind, end)[0] != name


def test_months_of_every_length() -> None:
    assert current_period("month", calendar.timegm((2028, 2, 29, 23, 0, 0))) == (
        "month:2028-02",
        calendar.timegm((2028, 3, 1, 0, 0, 0)),
    )
