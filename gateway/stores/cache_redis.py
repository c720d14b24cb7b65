"""The response cache in Redis (SPEC 3.6): shared by every replica, bypassed
(never failing a request) while Redis is unreachable. Imported only when
REDIS_URL is set, as everything that imports redis-py is."""

from __future__ import annotations

import redis.asyncio as aioredis

from gateway.stores.cache import PREFIX
from gateway.stores.redis import REDIS_ERRORS, Outage

__all__ = ["RedisCache"]


class RedisCache:
    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._outage = Outage()

    async def get(self, key: str) -> bytes | None:
        if self._outage.ongoing:
            return None
        try:
            value = await self._client.get(PREFIX + key)
        except REDIS_ERRORS:
            self._outage.begin()
            return None
        return value if isinstance(value, bytes) else None

    async def set(self, key: str, content: bytes, ttl: float) -> None:
        if self._outage.ongoing:
            return
        try:
            await self._client.set(PREFIX + key, content, px=max(1, int(ttl * 1000)))
        except REDIS_ERRORS:
            self._outage.begin()
