"""Token buckets in a real redis-server (gateway/stores/limiter_redis.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from gateway.stores.limiter import StoreUnavailable
from gateway.stores.limiter_redis import PREFIX, RedisLimiter
from gateway.stores.redis import connect_redis
from tests.conftest import RedisServer


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    connection = connect_redis(redis_server.url)
    yield connection
    await connection.aclose()


async def test_one_script_exact_and_with_ttl(client: aioredis.Redis) -> None:
    limiter = RedisLimiter(client)
    results = await asyncio.gather(*(limiter.acquire("r:k", 50, 1 / 3600) for _ in range(200)))
    assert sum(d.allowed for d in results) == 50
    assert min(d.remaining for d in results) == 0
    ttl = await client.pttl(PREFIX + "r:k")
    assert 0 < ttl <= 50 * 3600 * 1000 + 1000


async def test_refill_uses_the_server_clock(client: aioredis.Redis) -> None:
    limiter = RedisLimiter(client)
    assert (await limiter.acquire("r:fast", 1, 20.0)).allowed
    assert not (await limiter.acquire("r:fast", 1, 20.0)).allowed
    await asyncio.sleep(0.06)
    assert (await limiter.acquire("r:fast", 1, 20.0)).allowed


async def test_unreachable_redis_fails_fast(
    redis_server: RedisServer, client: aioredis.Redis
) -> None:
    limiter = RedisLimiter(client)
    await limiter.acquire("r:x", 1, 1.0)
    redis_server.kill()
    with pytest.raises(StoreUnavailable):
        await limiter.acquire("r:x", 1, 1.0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(StoreUnavailable):  # backing off: no network at all
        await limiter.acquire("r:x", 1, 1.0)
    assert loop.time() - started < 0.01
