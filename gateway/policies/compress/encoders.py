"""The three encodings, whole bodies and streams: zstd (zstandard), br
(brotli), gzip (zlib).

Levels are those for answers made per request, where CPU per byte matters
more than the last percent of ratio (nginx, Caddy and Cloudflare choose
alike): zstd 3, brotli 3, gzip 6 (brotli 4 costs twice brotli 3 per
10 KiB answer for 2% smaller output: make bench, PZ). A stream's encoder flushes after every
chunk, so that whatever the upstream sent (an SSE event) reaches the client
at once and decodes on its own.

An encoder's state is large (zstd's window and tables at level 3 are about
2 MiB; brotli's ring buffer follows `lgwin`): made afresh per answer, the
pages it touches are faulted in every time, which cost ~0.7 ms per 10 KiB
answer for zstd under load (make bench, PZ, profiled). zstd compressors are
therefore kept in a free list and reused (one per answer in flight: a
compressor is never shared by two answers at once); brotli's window is
capped at 256 KiB (`lgwin` 18), plenty for answers sent as they are made.
"""

from __future__ import annotations

import zlib
from typing import Protocol

import brotli
import zstandard

__all__ = ["ALGORITHMS", "StreamEncoder", "encode", "stream_encoder"]

ALGORITHMS = ("zstd", "br", "gzip")
_ZSTD_LEVEL, _BROTLI_QUALITY, _BROTLI_WINDOW, _GZIP_LEVEL = 3, 3, 18, 6
_IDLE_ZSTD = 64  # compressors kept for reuse beyond those in use


class _ZstdPool:
    """Compressors to reuse: taken for one answer, given back when it ends."""

    def __init__(self) -> None:
        self._free: list[zstandard.ZstdCompressor] = []

    def take(self) -> zstandard.ZstdCompressor:
        if self._free:
            return self._free.pop()
        return zstandard.ZstdCompressor(level=_ZSTD_LEVEL)

    def give_back(self, compressor: zstandard.ZstdCompressor) -> None:
        if len(self._free) < _IDLE_ZSTD:
            self._free.append(compressor)


ZSTD_POOL = _ZstdPool()


def encode(algorithm: str, body: bytes) -> bytes:
    """`body` encoded whole (safe on a worker thread: nothing is shared while it runs)."""
    if algorithm == "zstd":
        compressor = ZSTD_POOL.take()
        try:
            return compressor.compress(body)
        finally:
            ZSTD_POOL.give_back(compressor)
    if algorithm == "br":
        return bytes(brotli.compress(body, quality=_BROTLI_QUALITY, lgwin=_BROTLI_WINDOW))
    encoder = zlib.compressobj(_GZIP_LEVEL, zlib.DEFLATED, 31)
    return encoder.compress(body) + encoder.flush()


class StreamEncoder(Protocol):
    def chunk(self, data: bytes) -> bytes:
        """`data` encoded and flushed: everything so far decodes."""
        ...

    def end(self) -> bytes: ...

    def close(self) -> None:
        """Release what it holds (after `end`, or when the answer was cut off)."""
        ...


class _Zstd:
    def __init__(self) -> None:
        self._compressor: zstandard.ZstdCompressor | None = ZSTD_POOL.take()
        self._encoder = self._compressor.compressobj()

    def chunk(self, data: bytes) -> bytes:
        return self._encoder.compress(data) + self._encoder.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)

    def end(self) -> bytes:
        out = self._encoder.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH)
        self.close()
        return out

    def close(self) -> None:
        if self._compressor is not None:  # given back once
            ZSTD_POOL.give_back(self._compressor)
            self._compressor = None


class _Brotli:
    def __init__(self) -> None:
        self._encoder = brotli.Compressor(quality=_BROTLI_QUALITY, lgwin=_BROTLI_WINDOW)

    def chunk(self, data: bytes) -> bytes:
        return bytes(self._encoder.process(data)) + bytes(self._encoder.flush())

    def end(self) -> bytes:
        return bytes(self._encoder.finish())

    def close(self) -> None:
        return None


class _Gzip:
    def __init__(self) -> None:
        self._encoder = zlib.compressobj(_GZIP_LEVEL, zlib.DEFLATED, 31)

    def chunk(self, data: bytes) -> bytes:
        return self._encoder.compress(data) + self._encoder.flush(zlib.Z_SYNC_FLUSH)

    def end(self) -> bytes:
        return self._encoder.flush()

    def close(self) -> None:
        return None


def stream_encoder(algorithm: str) -> StreamEncoder:
    if algorithm == "zstd":
        return _Zstd()
    if algorithm == "br":
        return _Brotli()
    return _Gzip()
