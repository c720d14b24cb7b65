"""The three codecs, whole and streamed (gateway/policies/compress/encoders.py)."""

from __future__ import annotations

import gzip
import zlib
from typing import Any

import brotli
import pytest
import zstandard

from gateway.policies.compress.encoders import ALGORITHMS, ZSTD_POOL, encode, stream_encoder

BODY = b'{"items": [' + b",".join(b'{"id": %d, "name": "item"}' % i for i in range(500)) + b"]}"


def decode(algorithm: str, data: bytes) -> bytes:
    if algorithm == "gzip":
        return gzip.decompress(data)
    if algorithm == "br":
        return bytes(brotli.decompress(data))
    return zstandard.ZstdDecompressor().decompressobj().decompress(data)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_whole_bodies_round_trip_and_shrink(algorithm: str) -> None:
    encoded = encode(algorithm, BODY)
    assert decode(algorithm, encoded) == BODY
    assert len(encoded) * 5 < len(BODY)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_each_chunk_decodes_as_it_comes(algorithm: str) -> None:
    encoder = stream_encoder(algorithm)
    decoder: Any = (
        zlib.decompressobj(31)
        if algorithm == "gzip"
        else brotli.Decompressor()
        if algorithm == "br"
        else zstandard.ZstdDecompressor().decompressobj()
    )
    seen = b""
    for part in (b"data: one\n\n", b"data: two\n\n"):
        out = encoder.chunk(part)
        seen += decoder.process(out) if algorithm == "br" else decoder.decompress(out)
        assert seen.endswith(part)  # flushed: no byte waits for the next chunk
    tail = encoder.end()
    seen += decoder.process(tail) if algorithm == "br" else decoder.decompress(tail)
    assert seen == b"data: one\n\ndata: two\n\n"
    encoder.close()


def test_zstd_compressors_are_reused_and_never_shared() -> None:
    first, second = stream_encoder("zstd"), stream_encoder("zstd")
    assert first._compressor is not second._compressor  # type: ignore[attr-defined]
    held = first._compressor  # type: ignore[attr-defined]
    first.end()
    first.close()  # twice: given back once
    assert stream_encoder("zstd")._compressor is held  # type: ignore[attr-defined]
    second.close()
    assert ZSTD_POOL.take() is not None
