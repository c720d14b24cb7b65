"""The three encodings, whole bodies and streams: zstd (zstandard), br
(brotli), gzip (zlib).

Levels are those for answers made per request, where CPU per byte matters
more than the last percent of ratio (nginx, Caddy and Cloudflare choose
alike): zstd 3, brotli 4, gzip 6. A stream's encoder flushes after every
chunk, so that whatever the upstream sent (an SSE event) reaches the client
at once and decodes on its own.
"""

from __future__ import annotations

import zlib
from typing import Protocol

import brotli
import zstandard

__all__ = ["ALGORITHMS", "StreamEncoder", "encode", "stream_encoder"]

ALGORITHMS = ("zstd", "br", "gzip")
_ZSTD_LEVEL, _BROTLI_QUALITY, _GZIP_LEVEL = 3, 4, 6
_ZSTD = zstandard.ZstdCompressor(level=_ZSTD_LEVEL)


def encode(algorithm: str, body: bytes) -> bytes:
    """`body` encoded whole."""
    if algorithm == "zstd":
        return _ZSTD.compress(body)
    if algorithm == "br":
        return bytes(brotli.compress(body, quality=_BROTLI_QUALITY))
    encoder = zlib.compressobj(_GZIP_LEVEL, zlib.DEFLATED, 31)
    return encoder.compress(body) + encoder.flush()


class StreamEncoder(Protocol):
    def chunk(self, data: bytes) -> bytes:
        """`data` encoded and flushed: everything so far decodes."""
        ...

    def end(self) -> bytes: ...


class _Zstd:
    def __init__(self) -> None:
        self._encoder = zstandard.ZstdCompressor(level=_ZSTD_LEVEL).compressobj()

    def chunk(self, data: bytes) -> bytes:
        return self._encoder.compress(data) + self._encoder.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)

    def end(self) -> bytes:
        return self._encoder.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH)


class _Brotli:
    def __init__(self) -> None:
        self._encoder = brotli.Compressor(quality=_BROTLI_QUALITY)

    def chunk(self, data: bytes) -> bytes:
        return bytes(self._encoder.process(data)) + bytes(self._encoder.flush())

    def end(self) -> bytes:
        return bytes(self._encoder.finish())


class _Gzip:
    def __init__(self) -> None:
        self._encoder = zlib.compressobj(_GZIP_LEVEL, zlib.DEFLATED, 31)

    def chunk(self, data: bytes) -> bytes:
        return self._encoder.compress(data) + self._encoder.flush(zlib.Z_SYNC_FLUSH)

    def end(self) -> bytes:
        return self._encoder.flush()


def stream_encoder(algorithm: str) -> StreamEncoder:
    if algorithm == "zstd":
        return _Zstd()
    if algorithm == "br":
        return _Brotli()
    return _Gzip()
