"""Reading aggregate bodies (gateway/pipeline/aggregate/decode.py): encodings undone in
bounded steps, sizes limited, memory counted, bad compression refused."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import AsyncIterator

import pytest

from gateway.pipeline.aggregate.decode import OverBudget, TooLarge, Undecodable, is_json, read_body
from gateway.stores.memory_budget import MemoryBudget


async def chunks(data: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def encoded(name: bytes, length: int | None = None) -> list[tuple[bytes, bytes]]:
    headers = [(b"Content-Encoding", name)]
    if length is not None:
        headers.append((b"Content-Length", str(length).encode()))
    return headers


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-15)
    return compressor.compress(data) + compressor.flush()


BODY = b'{"items": [' + b",".join(b'{"id": %d}' % i for i in range(2000)) + b"]}"


@pytest.mark.parametrize(
    ("name", "compress"),
    [
        (b"gzip", gzip.compress),
        (b"x-gzip", gzip.compress),
        (b"deflate", zlib.compress),  # zlib-wrapped, as RFC 9110 says
        (b"deflate", raw_deflate),  # what some servers send instead
        (b"identity", lambda d: d),
    ],
)
async def test_encodings_are_undone(name: bytes, compress) -> None:  # type: ignore[no-untyped-def]
    hold = MemoryBudget(10 << 20).hold()
    assert await read_body(encoded(name), chunks(compress(BODY)), 1 << 20, hold) == BODY


@pytest.mark.parametrize(
    "data",
    [
        b"\x1f\x8b\x08\x00not really gzip at all",
        gzip.compress(BODY)[:-12],  # truncated
        gzip.compress(BODY) + b"junk after the member",
    ],
)
async def test_bad_compression_is_undecodable(data: bytes) -> None:
    hold = MemoryBudget(10 << 20).hold()
    with pytest.raises(Undecodable):
        await read_body(encoded(b"gzip"), chunks(data), 1 << 20, hold)


async def test_unasked_or_stacked_encodings_are_undecodable() -> None:
    hold = MemoryBudget(10 << 20).hold()
    for name in (b"br", b"gzip, gzip"):
        with pytest.raises(Undecodable):
            await read_body(encoded(name), chunks(BODY), 1 << 20, hold)


async def test_a_gzip_bomb_stops_at_the_limit_in_small_steps() -> None:
    bomb = gzip.compress(b"\0" * (200 << 20))  # 200 MiB of zeros in ~200 KiB
    assert len(bomb) < 300_000
    hold = MemoryBudget(1 << 30).hold()
    with pytest.raises(TooLarge):
        await read_body(encoded(b"gzip"), chunks(bomb, 65536), 1 << 20, hold)
    assert hold.held <= (1 << 20) + 65536  # never much more than the limit was held


async def test_declared_length_over_the_limit_is_refused_before_reading() -> None:
    async def never() -> AsyncIterator[bytes]:
        for _ in ():  # an async generator that fails when first read
            yield b""
        raise AssertionError("read")

    hold = MemoryBudget(10 << 20).hold()
    with pytest.raises(TooLarge):
        await read_body([(b"content-length", b"2000")], never(), 1000, hold)


async def test_bodies_count_against_the_budget() -> None:
    budget = MemoryBudget(len(BODY) * 2)
    first = budget.hold()
    assert await read_body([], chunks(BODY), 1 << 20, first) == BODY
    assert first.held == len(BODY) and budget.used == len(BODY)
    with pytest.raises(OverBudget):
        await read_body([], chunks(BODY), 1 << 20, budget.hold())
    first.release()
    assert budget.used == len(BODY)  # the refused one still holds what it had read


@pytest.mark.parametrize(
    ("data", "valid"),
    [
        (b'{"a": [1, 2.5, "x", true, null]}', True),
        (b"  [1]  ", True),
        (b'"\\u00e9"', True),
        (BODY * 40, False),  # documents one after another
        (b'{"a": 1,}', False),
        (b"[1, 2", False),
        (b'{"a": NaN}', False),
        (b'{"a": "\xc3\x28"}', False),  # not UTF-8
        (b"[1] x", False),
        (b"", False),
        (b"[" * 5000 + b"]" * 5000, False),  # deeper than any parser allows
    ],
)
def test_is_json_validates_without_building_objects(data: bytes, valid: bool) -> None:
    assert is_json(data) is valid


def test_is_json_on_a_large_document() -> None:
    big = b"[" + b",".join(b'{"id": %d, "name": "n%d"}' % (i, i) for i in range(200_000)) + b"]"
    assert len(big) > 64 * 1024 and is_json(big)
    assert not is_json(big[:-1])
