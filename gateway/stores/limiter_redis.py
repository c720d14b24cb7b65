"""Token buckets in Redis, shared by every replica.

One Lua script per decision (one round trip, atomic on the server), Redis's own
clock (`TIME`), so replicas' clocks do not matter, and a TTL on every key
(the time to refill, plus a second). After a failure the store answers
`StoreUnavailable` at once for a second (`Outage`, gateway/stores/redis.py)
instead of trying again on every request, so a dead Redis costs microseconds,
not a timeout per request.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from gateway.stores.limiter import Decision, StoreUnavailable, decision_for
from gateway.stores.redis import REDIS_ERRORS, Outage

__all__ = ["RedisLimiter"]

PREFIX = "gw:rl:"

_SCRIPT = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 't', 'u')
local tokens = tonumber(state[1])
local updated = tonumber(state[2])
if tokens == nil or updated == nil then
  tokens = capacity
  updated = now
end
tokens = math.min(capacity, tokens + math.max(0, now - updated) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'u', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / rate * 1000) + 1000)
return {allowed, tostring(tokens)}
"""


class RedisLimiter:
    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._script = client.register_script(_SCRIPT)
        self._outage = Outage()

    async def acquire(self, key: str, capacity: int, rate: float) -> Decision:
        if self._outage.ongoing:
            raise StoreUnavailable("redis is unreachable")
        try:
            allowed, tokens = await self._script(keys=[PREFIX + key], args=[capacity, repr(rate)])
        except REDIS_ERRORS as exc:
            self._outage.begin()
            raise StoreUnavailable(str(exc) or type(exc).__name__) from None
        return decision_for(bool(int(allowed)), float(tokens), capacity, rate)

    def housekeep(self) -> None:
        return None  # Redis expires its own keys

    async def aclose(self) -> None:
        return None  # the Redis client belongs to Runtime
