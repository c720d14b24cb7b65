"""Response cache and request coalescing for GET aggregate routes (SPEC 3.6).

Only complete 200 answers are stored (an optional backend that failed makes a
response partial, and partial responses are not cached). Two requests share an
entry only when every backend request they would cause is the same: the key
holds the route, its parameters as matched (decoded segment by segment, so
`/docs/x%2Fy/z` and `/docs/x/y/z` differ, as their upstream paths do), the
query, the identity with its provider, and every header value the backends
would receive from the client or the gateway (forwarded headers,
X-Forwarded-Host and -Proto, identity headers). Identical misses in flight
share one fan-out.

Stores: `MemoryCache` (bounded in entries and bytes, least recently used goes
first) and `RedisCache` (gateway/stores/cache_redis.py), which is bypassed,
never failing a request, while Redis is unreachable.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import orjson

from gateway.responses import Answer

__all__ = ["PREFIX", "CacheStore", "Coalescer", "MemoryCache", "cache_key"]

PREFIX = "gw:cache:"


class CacheStore(Protocol):
    async def get(self, key: str) -> bytes | None: ...
    async def set(self, key: str, content: bytes, ttl: float) -> None: ...


def cache_key(*parts: object) -> str:
    """SHA-256 of the parts as JSON: unambiguous whatever the parts hold."""
    return hashlib.sha256(orjson.dumps(parts)).hexdigest()


class MemoryCache:
    def __init__(self, max_entries: int = 10_000, max_bytes: int = 64 * 1024 * 1024) -> None:
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._bytes = 0
        self._max_entries = max_entries
        self._max_bytes = max_bytes

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= time.monotonic():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry[1]

    async def set(self, key: str, content: bytes, ttl: float) -> None:
        if len(content) > self._max_bytes // 4:
            return  # one answer may not push out most of the cache
        if key in self._entries:
            self._drop(key)
        self._entries[key] = (time.monotonic() + ttl, content)
        self._bytes += len(content)
        while len(self._entries) > self._max_entries or self._bytes > self._max_bytes:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: str) -> None:
        _, content = self._entries.pop(key)
        self._bytes -= len(content)

    def __len__(self) -> int:
        return len(self._entries)


@dataclass(frozen=True, slots=True)
class Filled:
    answer: Answer
    hit: bool


class Coalescer:
    """Look a key up; on a miss, run `compute` once however many requests ask
    for that key at the same time, and store a complete answer for `ttl`.

    The shared computation runs in its own task: a waiter that goes away (its
    client disconnected) does not cancel it for the others."""

    def __init__(self, store: CacheStore) -> None:
        self._store = store
        self._inflight: dict[str, asyncio.Task[Answer]] = {}

    async def get_or_compute(
        self, key: str, ttl: float, compute: Callable[[], Awaitable[Answer]]
    ) -> Filled:
        cached = await self._store.get(key)
        if cached is not None:
            return Filled(Answer.from_stored(cached), hit=True)
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.create_task(self._fill(key, ttl, compute))
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        return Filled(await asyncio.shield(task), hit=False)

    async def _fill(self, key: str, ttl: float, compute: Callable[[], Awaitable[Answer]]) -> Answer:
        answer = await compute()
        if answer.cacheable:
            await self._store.set(key, answer.stored(), ttl)
        return answer

    def _finished(self, key: str, task: asyncio.Task[Answer]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if not task.cancelled():
            task.exception()  # retrieved: each waiter re-raises it for its own request
