"""Reading an aggregate backend's body: its Content-Encoding undone, its size
limited, its bytes counted against the memory budget, all as it arrives; then
the `decode` stage: parsed, or (spliced: a body nothing reads or shapes)
validated as JSON without building Python objects and kept as its bytes.

Decompression is bounded per step (zlib's `max_length`), so a small gzip bomb
never inflates more than the limit allows before it is stopped. A body that
cannot be decoded (bad gzip, an encoding we did not ask for) is `Undecodable`:
a backend failure, never an error of the gateway's own.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterable, Awaitable, Callable

import orjson
import simdjson

from gateway.pipeline.aggregate.exchange import Exchange, Next, Stage
from gateway.pipeline.aggregate.outcome import Outcome
from gateway.stores.memory_budget import Hold, parsed_cost
from gateway.types import Failure

__all__ = [
    "VALIDATION_COST",
    "OverBudget",
    "TooLarge",
    "Undecodable",
    "decode_stage",
    "is_json",
    "read_body",
]

_STEP = 64 * 1024  # decompressed bytes per zlib call
# simdjson's tape and string buffer: about 5 bytes per byte of input (measured).
VALIDATION_COST = 5
_SMALL = 64 * 1024
_ONE_BUFFER = 256 * 1024  # declared bodies larger than this are read into one buffer
_shared = simdjson.Parser(max_capacity=_SMALL)  # keeps at most ~5 x 64 KiB


def is_json(data: bytes | bytearray) -> bool:
    """Is `data` one valid JSON document (RFC 8259: UTF-8, no NaN, nothing
    after it)? simdjson builds a tape, not Python objects: ~10x faster than
    parsing and ~5 bytes per byte, given back at once (small documents use a
    shared parser; a large one gets its own, freed with it)."""
    parser = _shared if len(data) <= _SMALL else simdjson.Parser()
    try:
        document = parser.parse(data)
    except (ValueError, RuntimeError):  # UnicodeDecodeError is a ValueError
        return False
    del document  # the parser holds one document at a time
    return True


class TooLarge(Exception):
    """The body is larger than the backend's limit."""


class OverBudget(Exception):
    """Holding the body would pass MEMORY_BUDGET."""


class Undecodable(Exception):
    """The body's Content-Encoding cannot be undone."""


class _Inflater:
    def __init__(self, encoding: bytes) -> None:
        if encoding in (b"gzip", b"x-gzip"):
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == b"deflate":
            self._zlib = zlib.decompressobj()  # zlib-wrapped; raw deflate is tried below
        else:
            raise Undecodable(f"unsupported content-encoding {encoding.decode('latin-1')!r}")
        self._deflate = encoding == b"deflate"
        self._started = False

    def feed(self, data: bytes) -> list[bytes]:
        out = []
        try:
            if not self._started and self._deflate:
                self._started = True
                try:
                    probe = zlib.decompressobj()
                    out.append(probe.decompress(data, _STEP))
                    self._zlib = probe
                except zlib.error:
                    self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate
                    out.append(self._zlib.decompress(data, _STEP))
            else:
                self._started = True
                out.append(self._zlib.decompress(data, _STEP))
            while self._zlib.unconsumed_tail:
                out.append(self._zlib.decompress(self._zlib.unconsumed_tail, _STEP))
        except zlib.error as exc:
            raise Undecodable(f"invalid compressed body: {exc}") from None
        return out

    def finish(self) -> None:
        if not self._zlib.eof or self._zlib.unused_data:
            raise Undecodable("truncated or trailing compressed data")


def content_encoding(headers: list[tuple[bytes, bytes]]) -> tuple[int | None, bytes | None]:
    """(declared length, encoding other than identity) from raw headers."""
    length: int | None = None
    encoding: bytes | None = None
    for name, value in headers:
        lower = name.lower()
        if lower == b"content-length" and value.strip().isdigit():
            length = int(value)
        elif lower == b"content-encoding":
            token = value.strip().lower()
            if token and token != b"identity":
                if encoding is not None or b"," in token:
                    raise Undecodable("more than one content-encoding")
                encoding = token
    return length, encoding


async def read_body(
    headers: list[tuple[bytes, bytes]],
    stream: AsyncIterable[bytes],
    limit: int,
    hold: Hold,
    attempt: asyncio.Timeout | None = None,
) -> bytes | bytearray:
    """The whole decoded body; raises TooLarge, OverBudget or Undecodable.
    Time spent waiting for memory is not the upstream's: the `attempt`'s
    deadline stands still meanwhile (the route's deadline still bounds it)."""

    async def take(size: int) -> bool:
        if hold.take_now(size):
            return True
        when = attempt.when() if attempt is not None else None
        if attempt is None or when is None:
            return await hold.take(size)
        loop = asyncio.get_running_loop()
        started = loop.time()
        attempt.reschedule(None)
        try:
            return await hold.take(size)
        finally:
            attempt.reschedule(when + loop.time() - started)

    declared, encoding = content_encoding(headers)
    if declared is not None and encoding is None:
        if declared > limit:
            raise TooLarge
        if declared > _ONE_BUFFER:
            if not await take(declared):
                raise OverBudget
            return await _read_declared(stream, declared)
    inflater = _Inflater(encoding) if encoding else None
    return await _read_chunks(stream, inflater, limit, hold, take)


async def _read_declared(stream: AsyncIterable[bytes], declared: int) -> bytearray:
    """Straight into one buffer of the declared size: every chunk lives only
    while it is copied, so a megabyte body leaves no holes in the heap (a list
    of chunks would: memory the process keeps though nothing uses it)."""
    buffer = bytearray(declared)
    filled = 0
    try:
        with memoryview(buffer) as view:
            async for chunk in stream:
                end = filled + len(chunk)
                if end > declared:
                    raise Undecodable("more bytes than its Content-Length")
                view[filled:end] = chunk
                filled = end
        if filled != declared:
            raise Undecodable("fewer bytes than its Content-Length")
    except BaseException:
        # Now, not when the collector gets to it: the raised exception keeps
        # this frame, and the buffer, alive in a traceback cycle.
        buffer.clear()
        raise
    return buffer


async def _read_chunks(
    stream: AsyncIterable[bytes],
    inflater: _Inflater | None,
    limit: int,
    hold: Hold,
    take: Callable[[int], Awaitable[bool]],
) -> bytes:
    """Chunks (decoded) joined once at the end, each counted as it comes."""
    parts: list[bytes] = []
    try:
        size = reserved = 0
        async for chunk in stream:
            for part in inflater.feed(chunk) if inflater is not None else (chunk,):
                parts.append(part)
                size += len(part)
                if size > limit:
                    raise TooLarge
                if size > reserved:
                    if not await take(size - reserved):
                        raise OverBudget
                    reserved = size
        if inflater is not None:
            inflater.finish()
        if len(parts) == 1:
            return parts[0]
        if not await take(size):  # the joined copy, while the parts still exist
            raise OverBudget
        data = b"".join(parts)
        hold.give(size)
        return data
    finally:
        parts.clear()  # as above: not kept alive by a traceback


def decode_stage(*, splice: bool) -> Stage:
    async def stage(exchange: Exchange, next: Next) -> None:
        payload, exchange.payload = exchange.payload, None
        assert payload is not None  # the send stage read it
        await _parse(payload, exchange.outcome, exchange.fanout.hold, splice)
        del payload
        if exchange.outcome.ok:
            exchange.outcome.body = exchange.outcome.raw  # what a shape stage may change
            await next(exchange)

    return stage


async def _parse(content: bytes | bytearray, outcome: Outcome, hold: Hold, splice: bool) -> None:
    """Parse (or, spliced, only validate) under the memory budget: what it will
    cost is held before it is spent; then the buffer (parsed) or the
    validator's tape (spliced) is given back."""
    cost, containers = (len(content) * VALIDATION_COST, 0) if splice else parsed_cost(content)
    if not await hold.take(cost):
        hold.give(len(content))
        outcome.failure = Failure.MEMORY
        return
    outcome.size = len(content)
    if splice:
        valid = is_json(content)
        hold.give(cost)
        if not valid:
            hold.give(len(content))
            outcome.failure = Failure.INVALID
            return
        if not isinstance(content, bytes):  # a Fragment takes bytes: one copy
            if not await hold.take(len(content)):
                hold.give(len(content))
                outcome.failure = Failure.MEMORY
                return
            content = bytes(content)
            hold.give(len(content))
        outcome.raw = orjson.Fragment(content)
        outcome.held = len(content)
        return
    try:
        parsed = orjson.loads(content)
    except orjson.JSONDecodeError:
        hold.give(cost + len(content))
        outcome.failure = Failure.INVALID
        return
    hold.give(len(content))
    outcome.raw = parsed
    outcome.held = cost
    outcome.containers = containers
