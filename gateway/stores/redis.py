"""The Redis client the shared stores use (rate limits, response cache), what
its failures look like, and how a store backs off after one."""

from __future__ import annotations

import time
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import SSLConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

__all__ = ["BACKOFF_SECONDS", "REDIS_ERRORS", "REDIS_TIMEOUT", "Outage", "connect_redis"]

REDIS_CONNECT_TIMEOUT = 0.5
# A TLS handshake is two more round trips and real CPU; a burst of requests
# opening the pool's connections at once must not time them out.
REDIS_TLS_CONNECT_TIMEOUT = 2.0
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
    REDIS_CONNECTIONS connections instead of opening hundreds at once.
    `rediss://` is Redis over TLS (the query may name `ssl_ca_certs`,
    `ssl_certfile`, `ssl_keyfile`, `ssl_cert_reqs`); a password goes in the
    URL's userinfo (`redis://:PASSWORD@host:6379/0`)."""
    tls = url.startswith("rediss://")
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=REDIS_CONNECTIONS,
        timeout=REDIS_TLS_CONNECT_TIMEOUT if tls else REDIS_TIMEOUT,  # waiting for a connection
        socket_connect_timeout=REDIS_TLS_CONNECT_TIMEOUT if tls else REDIS_CONNECT_TIMEOUT,
        socket_timeout=REDIS_TIMEOUT,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=15,
    )
    if pool.connection_class is SSLConnection:
        pool.connection_class = _one_context_per_pool()
    return aioredis.Redis.from_pool(pool)  # the client owns the pool: aclose() closes it


def _one_context_per_pool() -> type[SSLConnection]:
    """redis-py builds an SSL context per connection, loading the system's CA
    bundle again each time (~25 ms of CPU: a burst of requests opening the
    pool's connections at once timed out). The pool's connections share one."""

    class PoolTLSConnection(SSLConnection):
        shared: Any = None  # the first connection's RedisSSLContext

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            if PoolTLSConnection.shared is None:
                PoolTLSConnection.shared = self.ssl_context
            else:
                self.ssl_context = PoolTLSConnection.shared

    return PoolTLSConnection


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
