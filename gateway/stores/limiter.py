"""Token buckets (SPEC 3.5): capacity `burst`, refilled at `limit` per `window`,
one token per admitted request.

A `Limiter` takes one decision per request. `MemoryLimiter`
(limiter_memory.py) keeps the buckets in this process (exact, since a
decision never awaits); `RedisLimiter` (limiter_redis.py) keeps them in
Redis, shared by every replica, one round trip per decision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

__all__ = ["Decision", "Limiter", "StoreUnavailable", "decision_for"]


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    remaining: int  # whole tokens left
    reset_after: int  # seconds until the bucket is full again, rounded up
    retry_after: int  # seconds until one token, rounded up, at least 1


class StoreUnavailable(Exception):
    """The shared store did not answer; RATE_LIMIT_FAILURE_MODE decides."""


class Limiter(Protocol):
    async def acquire(self, key: str, capacity: int, rate: float) -> Decision:
        """Take one token from bucket `key`; `rate` is tokens per second."""
        ...

    def housekeep(self) -> None:
        """Called about once a second, off the request path: forget what can be."""
        ...

    async def aclose(self) -> None: ...


def decision_for(allowed: bool, tokens: float, capacity: int, rate: float) -> Decision:
    """The headers' numbers for a bucket holding `tokens` after this decision."""
    return Decision(
        allowed=allowed,
        remaining=max(0, math.floor(tokens + 1e-9)),
        reset_after=max(0, math.ceil((capacity - tokens) / rate - 1e-9)),
        retry_after=max(1, math.ceil((1 - tokens) / rate - 1e-9)),
    )
