"""Token buckets in this process: exact, O(1) per decision, and forgetful.

Exact: a decision never awaits, so concurrent requests are decided one by one.

Each bucket is one float, the moment it will be full again (GCRA's
"theoretical arrival time"): with capacity C and rate r, a bucket full at T
holds C - max(0, T - now) * r tokens; taking one moves T to max(T, now) + 1/r.
This is the same token bucket, stored in a single number.

Forgetful: a bucket that is full again means the same as no bucket, so it is
dropped. Every bucket has exactly one entry in a timing wheel of one-second
slots, at the second it will be full. Each decision first looks at a few due
entries (EXPIRE_PER_DECISION): a bucket that is full by then is dropped, one
that was used since moves to its new slot. So the work per decision does not
depend on the number of buckets, and memory follows the buckets that are
actually limiting someone, whatever keys clients invent (`header:` values,
IPv6 addresses).
"""

from __future__ import annotations

import math
import time

from gateway.stores.limiter import Decision, decision_for

__all__ = ["MemoryLimiter"]

EXPIRE_PER_DECISION = 8
EXPIRE_PER_HOUSEKEEPING = 20_000  # once a second: a few milliseconds at most
_EPSILON = 1e-9  # float slack: a token that is due now counts as there


class MemoryLimiter:
    def __init__(self) -> None:
        self._full_at: dict[str, float] = {}
        self._wheel: dict[int, list[str]] = {}  # second -> keys full by then (maybe)
        self._due: list[str] = []  # keys of passed seconds, still to look at
        self._tick = math.floor(time.monotonic())  # the next second to open

    def __len__(self) -> int:
        return len(self._full_at)

    async def acquire(self, key: str, capacity: int, rate: float) -> Decision:
        now = time.monotonic()
        self._expire(now, EXPIRE_PER_DECISION)
        full_at = self._full_at.get(key)
        if full_at is None:
            full_at = now
            self._schedule(key, now + 1 / rate)
        else:
            full_at = max(full_at, now)
        tokens = capacity - (full_at - now) * rate
        allowed = tokens >= 1 - _EPSILON
        if allowed:
            full_at += 1 / rate
            tokens -= 1
        self._full_at[key] = full_at
        return decision_for(allowed, tokens, capacity, rate)

    def _schedule(self, key: str, full_at: float) -> None:
        slot = max(math.ceil(full_at), self._tick)
        bucket = self._wheel.get(slot)
        if bucket is None:
            self._wheel[slot] = [key]
        else:
            bucket.append(key)

    def _expire(self, now: float, budget: int) -> None:
        """Look at up to `budget` due wheel entries (or empty seconds)."""
        while budget > 0:
            if not self._due:
                if self._tick > now:
                    return
                if not self._wheel:
                    self._tick = math.floor(now) + 1  # nothing scheduled: skip ahead
                    return
                self._due = self._wheel.pop(self._tick, [])
                self._tick += 1
                budget -= 1
                continue
            key = self._due.pop()
            budget -= 1
            full_at = self._full_at.get(key)
            if full_at is None:
                continue
            if full_at <= now + _EPSILON:
                del self._full_at[key]
            else:
                self._schedule(key, full_at)  # used since it was scheduled

    def housekeep(self) -> None:
        """Without traffic, decisions expire nothing: the lifespan calls this
        once a second so that memory also follows the live buckets then."""
        self._expire(time.monotonic(), EXPIRE_PER_HOUSEKEEPING)

    def expire_all(self, now: float | None = None) -> None:
        """Drop every bucket that is full by `now` (tests; never on the request path)."""
        self._expire(time.monotonic() if now is None else now, 1 << 62)

    async def aclose(self) -> None:
        self._full_at.clear()
        self._wheel.clear()
        self._due.clear()
