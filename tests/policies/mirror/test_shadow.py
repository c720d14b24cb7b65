"""Mirrored calls' bookkeeping (gateway/policies/mirror/shadow.py): the kept
primary body, masking in the mismatch list, sampling."""

from __future__ import annotations

import asyncio
import gzip
from collections import deque
from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.envelope import MirrorCall
from gateway.policies.mirror import shadow
from gateway.policies.mirror.shadow import KEEP, Mirror, kept, mirror_document
from gateway.routes.model import MirrorSpec, Upstream
from gateway.upstream.attempts import UpstreamGuard

UPSTREAM = Upstream(name="m", scheme="http", host="m", port=80, base_path="")


def mirror(spec: MirrorSpec, secrets: frozenset[str] = frozenset()) -> Mirror:
    guard = UpstreamGuard.for_upstream(UPSTREAM)
    return Mirror("r", spec, UPSTREAM, httpx.AsyncClient(), guard, secrets)


async def chunks(*parts: bytes, fail: bool = False) -> AsyncIterator[bytes]:
    for part in parts:
        yield part
    if fail:
        raise httpx.ReadError("cut")


async def test_the_primary_body_is_kept_once_it_has_passed_whole() -> None:
    future: asyncio.Future[tuple[int | None, bytes | None]] = asyncio.Future()
    passed = [c async for c in kept(chunks(b"ab", b"cd"), future, 201, [])]
    assert passed == [b"ab", b"cd"] and future.result() == (201, b"abcd")


async def test_an_encoded_primary_is_decoded_and_a_large_one_kept_as_status_only() -> None:
    future: asyncio.Future[tuple[int | None, bytes | None]] = asyncio.Future()
    encoded = gzip.compress(b'{"a": 1}')
    async for _ in kept(chunks(encoded), future, 200, [(b"Content-Encoding", b"gzip")]):
        pass
    assert future.result() == (200, b'{"a": 1}')
    large: asyncio.Future[tuple[int | None, bytes | None]] = asyncio.Future()
    async for _ in kept(chunks(b"x" * (KEEP + 1)), large, 200, []):
        pass
    assert large.result() == (200, None)


async def test_a_primary_cut_off_is_not_compared() -> None:
    future: asyncio.Future[tuple[int | None, bytes | None]] = asyncio.Future()
    with pytest.raises(httpx.ReadError):
        async for _ in kept(chunks(b"ab", fail=True), future, 200, []):
            pass
    assert future.cancelled()


def test_sampling_follows_methods_body_size_and_percent() -> None:
    m = mirror(MirrorSpec(upstream="m", percent=100, max_body_size=10))
    assert m.samples("GET", 0) and not m.samples("POST", 0) and not m.samples("GET", 11)
    half = mirror(MirrorSpec(upstream="m", percent=50))
    share = sum(half.samples("GET", 0) for _ in range(4000)) / 4000
    assert 0.45 < share < 0.55


def test_mismatches_never_show_a_known_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shadow, "RECENT", deque(maxlen=50))
    m = mirror(MirrorSpec(upstream="m", compare=True), frozenset({"s3cret-token-value"}))
    call = MirrorCall("GET", "/users/s3cret-token-value", "key=k", [], None, None)
    m._keep(
        call,
        "req-1",
        [
            ("user.note", "has s3cret-token-value inside", "other"),
            ("headers.authorization", "Bearer abc", "Bearer def"),
            ("items", ["x" * 1000], {"n": 1}),
        ],
    )
    document = mirror_document()
    text = str(document)
    assert "s3cret-token-value" not in text and "Bearer" not in text and "key=k" not in text
    (entry,) = document["mismatches"]
    assert entry["request"] == "GET /users/***" and entry["request_id"] == "req-1"
    items = entry["differences"][2]
    assert items["mirror"] == {"n": 1}  # values stay JSON
    assert isinstance(items["primary"], str) and len(items["primary"]) == 500  # cut short


async def test_a_draining_process_starts_no_mirrored_call_and_ends_those_running(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gateway.lifecycle import Lifecycle

    draining = Lifecycle()
    monkeypatch.setattr(shadow, "lifecycle", draining)
    m = mirror(MirrorSpec(upstream="m"))
    started = asyncio.Event()

    async def hang(call: MirrorCall) -> None:
        started.set()
        await asyncio.sleep(60)

    monkeypatch.setattr(m, "_send", hang)
    tap = m.tap()
    tap.calls.append(MirrorCall("GET", "/x", "", [], None, None))
    m.fire(tap, "r-1")
    await started.wait()
    assert m.in_flight == 1 and len(draining.open_ended) == 1
    draining.drain()  # SIGTERM
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert m.in_flight == 0
    m.fire(tap, "r-2")  # while draining: dropped, not started
    assert m.in_flight == 0
