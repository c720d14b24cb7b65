"""Calendar periods of quotas, in UTC: the current one's name and its end."""

from __future__ import annotations

import calendar
import time
from datetime import UTC, datetime

__all__ = ["PERIODS", "current_period"]

PERIODS = ("hour", "day", "month")


def current_period(kind: str, now: float | None = None) -> tuple[str, int]:
    """("day:2026-12-07", the epoch second the next day starts)."""
    now = time.time() if now is None else now
    if kind == "hour":
        start = int(now // 3600) * 3600
        return f"hour:{start}", start + 3600
    if kind == "day":
        start = int(now // 86400) * 86400
        return f"day:{start}", start + 86400
    moment = datetime.fromtimestamp(now, UTC)
    year, month = moment.year, moment.month
    following = (year + 1, 1) if month == 12 else (year, month + 1)
    ends = calendar.timegm((*following, 1, 0, 0, 0))
    return f"month:{year:04d}-{month:02d}", ends
