"""Quota counters (SPEC 3.16): requests per consumer per calendar period.

`take(period, consumer, limit, resets_at)` counts one request unless the
consumer has used `limit` in this period already; it answers whether the
request was admitted and how many the period has counted. A period is named
by its kind and start ("day:2026-12-07"), so a new period starts from zero
by itself and counts are independent of the limits: a reload that changes a
plan's quota keeps what was used.

`MemoryQuotas`: per process, one dict per period (a period that ended is
dropped whole; a decision costs the same with 10 consumers or 1,000,000).
`RedisQuotas`: shared by every replica and kept across restarts, one Lua
script per decision (one round trip, atomic), each key expiring a day after
its period ends. After a failure it answers `StoreUnavailable` at once for a
second (`Outage`), as the rate limiter does.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Protocol

from gateway.stores.limiter import StoreUnavailable

if TYPE_CHECKING:
    import redis.asyncio as aioredis

__all__ = ["MemoryQuotas", "Quotas", "RedisQuotas"]

PREFIX = "gw:quota:"
_KEEP_AFTER_END = 86400  # seconds a period's counts outlive it (for GET /consumers, clocks)


class Quotas(Protocol):
    async def take(
        self, period: str, consumer: str, limit: int, resets_at: int
    ) -> tuple[bool, int]: ...


class MemoryQuotas:
    def __init__(self) -> None:
        self._periods: dict[str, tuple[int, dict[str, int]]] = {}  # period -> (ends, counts)

    async def take(
        self, period: str, consumer: str, limit: int, resets_at: int
    ) -> tuple[bool, int]:
        found = self._periods.get(period)
        if found is None:
            self._forget_ended()
            found = self._periods[period] = (resets_at, {})
        counts = found[1]
        used = counts.get(consumer, 0)
        if used >= limit:
            return False, used
        counts[consumer] = used + 1
        return True, used + 1

    def _forget_ended(self) -> None:
        now = time.time()
        for period, (ends, _) in list(self._periods.items()):
            if ends + _KEEP_AFTER_END < now:
                del self._periods[period]


_SCRIPT = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used >= tonumber(ARGV[1]) then
  return {0, used}
end
used = redis.call('INCR', KEYS[1])
if used == 1 then
  redis.call('EXPIREAT', KEYS[1], tonumber(ARGV[2]))
end
return {1, used}
"""


class RedisQuotas:
    def __init__(self, client: aioredis.Redis) -> None:
        from gateway.stores.redis import Outage  # loaded with the client

        self._script = client.register_script(_SCRIPT)
        self._outage = Outage()

    async def take(
        self, period: str, consumer: str, limit: int, resets_at: int
    ) -> tuple[bool, int]:
        from gateway.stores.redis import REDIS_ERRORS

        if self._outage.ongoing:
            raise StoreUnavailable("redis is unreachable")
        try:
            allowed, used = await self._script(
                keys=[f"{PREFIX}{period}:{consumer}"], args=[limit, resets_at + _KEEP_AFTER_END]
            )
        except REDIS_ERRORS as exc:
            self._outage.begin()
            raise StoreUnavailable(str(exc) or type(exc).__name__) from None
        return bool(int(allowed)), int(used)
