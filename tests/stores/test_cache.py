"""Response cache stores and request coalescing (gateway/stores/cache.py)."""

from __future__ import annotations

import asyncio

import pytest

from gateway.errors import BackendFailed
from gateway.responses import Answer
from gateway.stores.cache import Coalescer, MemoryCache, cache_key


async def test_memory_cache_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr("gateway.stores.cache.time.monotonic", lambda: now[0])
    cache = MemoryCache()
    await cache.set("k", b"v", ttl=1.0)
    assert await cache.get("k") == b"v"
    now[0] += 1.0
    assert await cache.get("k") is None
    assert len(cache) == 0


async def test_memory_cache_is_bounded_in_entries_and_bytes() -> None:
    by_count = MemoryCache(max_entries=3, max_bytes=1000)
    for key in "abcd":
        await by_count.set(key, b"x", ttl=60)
    assert len(by_count) == 3 and await by_count.get("a") is None
    by_size = MemoryCache(max_entries=100, max_bytes=100)
    await by_size.set("a", b"x" * 20, ttl=60)
    await by_size.set("b", b"x" * 20, ttl=60)
    await by_size.get("a")  # recently used: "b" goes first
    for key in "cdef":  # 120 bytes: one entry must go
        await by_size.set(key, b"x" * 20, ttl=60)
    assert await by_size.get("b") is None and await by_size.get("a") is not None
    await by_size.set("huge", b"x" * 60, ttl=60)  # over a quarter of the cache: not stored
    assert await by_size.get("huge") is None


def test_cache_key_separates_what_matters() -> None:
    base = cache_key("r", [["p", ["x/y", "z"]]], "a=1", "keys/alice", [("accept-language", "de")])
    assert base == cache_key(
        "r", [["p", ["x/y", "z"]]], "a=1", "keys/alice", [("accept-language", "de")]
    )
    for other in (
        cache_key("r2", [["p", ["x/y", "z"]]], "a=1", "keys/alice", [("accept-language", "de")]),
        cache_key("r", [["p", ["x", "y", "z"]]], "a=1", "keys/alice", [("accept-language", "de")]),
        cache_key("r", [["p", ["x/y", "z"]]], "a=2", "keys/alice", [("accept-language", "de")]),
        cache_key("r", [["p", ["x/y", "z"]]], "a=1", "jwt/alice", [("accept-language", "de")]),
        cache_key("r", [["p", ["x/y", "z"]]], "a=1", None, [("accept-language", "de")]),
        cache_key("r", [["p", ["x/y", "z"]]], "a=1", "keys/alice", [("accept-language", "fr")]),
        # parts cannot run into each other, whatever bytes they hold
        cache_key("r", [["p", ["x/y", "z"]]], "a=1", "keys/alice", [("accept-language", "de")], ""),
    ):
        assert other != base


async def test_concurrent_misses_share_one_computation() -> None:
    calls = 0

    async def compute() -> Answer:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return Answer(b"body", True)

    coalescer = Coalescer(MemoryCache())
    results = await asyncio.gather(*(coalescer.get_or_compute("k", 10, compute) for _ in range(20)))
    assert calls == 1
    assert {r.answer.content for r in results} == {b"body"} and not any(r.hit for r in results)
    assert (await coalescer.get_or_compute("k", 10, compute)).hit


async def test_failures_reach_every_waiter_and_are_not_stored() -> None:
    async def fail() -> Answer:
        await asyncio.sleep(0.01)
        raise BackendFailed(502, "down", backend="b", slug="backend-connect")

    coalescer = Coalescer(MemoryCache())
    results = await asyncio.gather(
        *(coalescer.get_or_compute("k", 10, fail) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, BackendFailed) for r in results)

    async def partial() -> Answer:
        return Answer(b"partial", False)

    assert not (await coalescer.get_or_compute("k", 10, partial)).hit
    assert not (await coalescer.get_or_compute("k", 10, partial)).hit

    async def other_status() -> Answer:  # a response hook changed the status
        return Answer(b"{}", True, status=201)

    assert not (await coalescer.get_or_compute("d", 10, other_status)).hit
    assert not (await coalescer.get_or_compute("d", 10, other_status)).hit


async def test_headers_a_hook_set_are_cached_with_the_answer() -> None:
    async def dressed() -> Answer:
        return Answer(b'{"a": 1}', True, headers=(("x-shaped", "yes"), ("x-n", "\u00e9")))

    coalescer = Coalescer(MemoryCache())
    first = await coalescer.get_or_compute("k", 10, dressed)
    second = await coalescer.get_or_compute("k", 10, dressed)
    assert not first.hit and second.hit
    assert second.answer == first.answer


async def test_a_waiter_leaving_does_not_cancel_the_others() -> None:
    async def compute() -> Answer:
        await asyncio.sleep(0.05)
        return Answer(b"done", True)

    coalescer = Coalescer(MemoryCache())
    first = asyncio.create_task(coalescer.get_or_compute("k", 10, compute))
    second = asyncio.create_task(coalescer.get_or_compute("k", 10, compute))
    await asyncio.sleep(0.01)
    first.cancel()
    assert (await second).answer.content == b"done"
