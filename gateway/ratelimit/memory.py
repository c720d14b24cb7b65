"""Token buckets in this process: exact (no await inside a decision), and
bounded: buckets that have refilled completely are dropped, since a missing
bucket and a full one mean the same thing."""

from __future__ import annotations

import time

from . import Decision, decision_for

__all__ = ["MemoryLimiter"]

SWEEP_EVERY_SECONDS = 30.0


class MemoryLimiter:
    def __init__(self, max_buckets: int = 200_000) -> None:
        # key -> [tokens, updated (monotonic), capacity, rate]
        self._buckets: dict[str, list[float]] = {}
        self._max_buckets = max_buckets
        self._next_sweep = time.monotonic() + SWEEP_EVERY_SECONDS

    def __len__(self) -> int:
        return len(self._buckets)

    async def acquire(self, key: str, capacity: int, rate: float) -> Decision:
        now = time.monotonic()
        bucket = self._buckets.get(key)
        if bucket is None:
            tokens = float(capacity)
        else:
            tokens = min(float(capacity), bucket[0] + (now - bucket[1]) * rate)
        allowed = tokens >= 1
        if allowed:
            tokens -= 1
        self._buckets[key] = [tokens, now, float(capacity), rate]
        if now >= self._next_sweep or len(self._buckets) > self._max_buckets:
            self.sweep(now)
        return decision_for(allowed, tokens, capacity, rate)

    def sweep(self, now: float) -> None:
        """Drop every bucket that is full again by now."""
        self._buckets = {
            key: bucket
            for key, bucket in self._buckets.items()
            if bucket[0] + (now - bucket[1]) * bucket[3] < bucket[2]
        }
        self._next_sweep = now + SWEEP_EVERY_SECONDS

    async def aclose(self) -> None:
        self._buckets.clear()
