"""What this process has seen of each consumer, for `GET /consumers` on the
admin listener and the dashboard's top consumers: plan, quota use,
requests admitted and refused (rate limits, quota).

Bounded: the CONSUMERS most recently seen (a million consumers do not grow
it). Quota use is the count the store last answered (with Redis: the count
of every replica).
"""

from __future__ import annotations

import heapq
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

__all__ = ["BOOK", "ConsumerBook", "consumers_document"]

CONSUMERS = 10_000


@dataclass(slots=True)
class Consumer:
    plan: str
    admitted: int = 0
    rate_limited: int = 0
    quota_refused: int = 0
    quota_used: int | None = None
    quota_limit: int | None = None
    period: str | None = None
    last_seen: float = 0.0


class ConsumerBook:
    def __init__(self, size: int = CONSUMERS) -> None:
        self._size = size
        self._seen: OrderedDict[str, Consumer] = OrderedDict()

    def seen(self, key: str, plan: str) -> Consumer:
        entry = self._seen.get(key)
        if entry is None:
            entry = self._seen[key] = Consumer(plan)
            if len(self._seen) > self._size:
                self._seen.popitem(last=False)
        else:
            self._seen.move_to_end(key)
            entry.plan = plan
        entry.last_seen = time.time()
        return entry

    def top(self, limit: int | None = None) -> list[tuple[str, Consumer]]:
        """Most quota used first, then most admitted (the first `limit`)."""
        order = _by_use
        if limit is None:
            return sorted(self._seen.items(), key=order)
        return heapq.nsmallest(limit, self._seen.items(), key=order)


def _by_use(item: tuple[str, Consumer]) -> tuple[int, int, str]:
    key, consumer = item
    return (-(consumer.quota_used or 0), -consumer.admitted, key)


BOOK = ConsumerBook()


def consumers_document(limit: int | None = None) -> dict[str, Any]:
    top = BOOK.top(limit)
    consumers = [
        {
            "consumer": key,
            "plan": c.plan,
            "quota": None
            if c.quota_limit is None
            else {"used": c.quota_used, "limit": c.quota_limit, "period": c.period},
            "admitted": c.admitted,
            "rate_limited": c.rate_limited,
            "quota_refused": c.quota_refused,
            "last_seen": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(c.last_seen)),
        }
        for key, c in top
    ]
    rows = [
        [
            key,
            c.plan,
            "" if c.quota_limit is None else f"{c.quota_used} / {c.quota_limit}",
            c.admitted,
            c.rate_limited,
            c.quota_refused,
            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(c.last_seen)),
        ]
        for key, c in top
    ]
    return {
        "consumers": consumers,
        "columns": [
            "consumer",
            "plan",
            "quota used",
            "admitted",
            "rate limited",
            "over quota",
            "last seen",
        ],
        "rows": rows,
    }
