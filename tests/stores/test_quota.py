"""Quota counters in memory and in a real redis-server (gateway/stores/quota.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from gateway.stores.limiter import StoreUnavailable
from gateway.stores.quota import PREFIX, MemoryQuotas, RedisQuotas
from gateway.stores.redis import connect_redis
from tests.conftest import RedisServer

ENDS = int(time.time()) + 3600


async def test_memory_counts_to_the_limit_and_refusals_do_not_count() -> None:
    quotas = MemoryQuotas()
    results = [await quotas.take("day:1", "a", 3, ENDS) for _ in range(5)]
    assert results == [(True, 1), (True, 2), (True, 3), (False, 3), (False, 3)]
    assert await quotas.take("day:1", "b", 3, ENDS) == (True, 1)  # per consumer
    assert await quotas.take("day:2", "a", 3, ENDS + 86400) == (True, 1)  # a new period


async def test_memory_forgets_periods_long_ended() -> None:
    quotas = MemoryQuotas()
    await quotas.take("day:old", "a", 3, int(time.time()) - 2 * 86400)
    await quotas.take("day:new", "a", 3, ENDS)
    assert "day:old" not in quotas._periods


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    connection = connect_redis(redis_server.url)
    yield connection
    await connection.aclose()


async def test_redis_is_exact_under_concurrency(client: aioredis.Redis) -> None:
    quotas = RedisQuotas(client)
    results = await asyncio.gather(*(quotas.take("day:x", "c", 25, ENDS) for _ in range(100)))
    assert sum(allowed for allowed, _ in results) == 25
    assert max(used for _, used in results) == 25
    assert await client.get(PREFIX + "day:x:c") == b"25"  # refused requests never counted
    ttl = await client.ttl(PREFIX + "day:x:c")
    assert 3600 < ttl <= 3600 + 86400 + 5  # a day past the period's end


async def test_redis_down_answers_at_once(redis_server: RedisServer) -> None:
    connection = connect_redis(redis_server.url)
    quotas = RedisQuotas(connection)
    redis_server.kill()
    with pytest.raises(StoreUnavailable):
        await quotas.take("day:x", "c", 5, ENDS)
    attempts = 0
    real = quotas._script

    async def counted(**kwargs: Any) -> object:
        nonlocal attempts
        attempts += 1
        return await real(**kwargs)

    quotas._script = counted  # type: ignore[assignment]
    with pytest.raises(StoreUnavailable):
        await quotas.take("day:x", "c", 5, ENDS)  # the outage: no new attempt for a second
    assert attempts == 0
    await connection.aclose()
