"""Shared runtime resources, made once per process and kept across reloads:
upstream HTTP clients, the Redis client, the rate-limit and cache stores, and
JWKS key caches. Owned by the ASGI lifespan, which closes them at shutdown."""

from __future__ import annotations

import asyncio
import logging

import httpx
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from .auth import JwksKeys
from .cache import CacheStore, Coalescer, MemoryCache, RedisCache
from .ratelimit import Limiter
from .ratelimit.memory import MemoryLimiter
from .ratelimit.redis import RedisLimiter
from .upstream import TransportKind, UpstreamClients, create_client

__all__ = ["Services"]

logger = logging.getLogger("gateway")
REDIS_CONNECT_TIMEOUT = 0.5
REDIS_TIMEOUT = 0.5
REDIS_CONNECTIONS = 64


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


class Services:
    def __init__(self, *, transport: TransportKind, redis_url: str, failure_mode: str) -> None:
        self.transport = transport
        self.clients = UpstreamClients(transport)
        self.redis = connect_redis(redis_url) if redis_url else None
        self.limiter: Limiter = RedisLimiter(self.redis) if self.redis else MemoryLimiter()
        store: CacheStore = RedisCache(self.redis) if self.redis else MemoryCache()
        self.coalescer = Coalescer(store)
        self.fail_closed = failure_mode == "closed"
        self._jwks: dict[str, JwksKeys] = {}
        self._jwks_client: httpx.AsyncClient | None = None

    def jwks(self, url: str) -> JwksKeys:
        keys = self._jwks.get(url)
        if keys is None:
            if self._jwks_client is None:
                self._jwks_client = create_client(self.transport, max_connections=4, timeout=5.0)
            keys = self._jwks[url] = JwksKeys(url, self._jwks_client)
        return keys

    async def redis_ready(self) -> bool:
        if self.redis is None:
            return True
        try:
            async with asyncio.timeout(REDIS_TIMEOUT):
                return bool(await self.redis.ping())
        except (RedisError, OSError, TimeoutError):
            return False

    async def aclose(self) -> None:
        await self.clients.aclose()
        await self.limiter.aclose()
        if self._jwks_client is not None:
            await self._jwks_client.aclose()
        if self.redis is not None:
            await self.redis.aclose()
