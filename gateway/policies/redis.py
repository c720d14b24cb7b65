"""The Redis client the shared stores use (rate limits, response cache), what
its failures look like, and how a store backs off after one."""

from __future__ import annotations

import time

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

__all__ = ["BACKOFF_SECONDS", "REDIS_ERRORS", "REDIS_TIMEOUT", "Outage", "connect_redis"]

REDIS_CONNECT_TIMEOUT = 0.5
REDIS_TIMEOUT = 0.5
REDIS_CONNECTIONS = 64
BACKOFF_SECONDS = 1.0
# What a call to an unreachable or failing Redis raises.
REDIS_ERRORS = (RedisError, OSError, TimeoutError)


def connect_redis(url: str) -> aioredis.Redis:
    """A Redis client that fails fast: short timeouts and no retries (redis-py
    would retry ten times with back-off), so a dead Redis costs the first
    requests half a second and, once the stores back off, the rest nothing.
    A bounded, blocking pool: a burst of requests queues briefly for one of
    REDIS_CONNECTIONS connections instead of opening hundreds at once."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=REDIS_CONNECTIONS,
        timeout=REDIS_TIMEOUT,  # waiting for a pooled connection
        socket_connect_timeout=REDIS_CONNECT_TIMEOUT,
        socket_timeout=REDIS_TIMEOUT,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=15,
    )
    return aioredis.Redis.from_pool(pool)  # the client owns the pool: aclose() closes it


class Outage:
    """After a failed call, a store skips Redis for BACKOFF_SECONDS instead of
    waiting for a timeout on every request."""

    __slots__ = ("_until",)

    def __init__(self) -> None:
        self._until = 0.0

    @property
    def ongoing(self) -> bool:
        return time.monotonic() < self._until

    def begin(self) -> None:
        self._until = time.monotonic() + BACKOFF_SECONDS
