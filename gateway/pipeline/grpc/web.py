"""gRPC-Web (SPEC 3.18): what browsers send, translated for a gRPC upstream
and back, as Envoy's grpc_web filter does.

- `application/grpc-web` and `application/grpc-web+proto` (binary): the
  request's messages go on as they are, as `application/grpc(+proto)`;
- `application/grpc-web-text` (base64): decoded on the way in, and the
  answer encoded on the way out;
- the answer's trailers become its last frame (flag 0x80, then the
  trailers as HTTP/1 header lines), so a browser over HTTP/1.1 gets them.
"""

from __future__ import annotations

import base64
import binascii
import re

__all__ = ["TextEncoder", "decode_text", "trailer_frame", "upstream_type", "web_mode"]

_SEGMENT = re.compile(rb"[A-Za-z0-9+/]+=*")


def web_mode(content_type: bytes) -> str | None:
    """ "text", "binary", or None (not gRPC-Web)."""
    media = content_type.split(b";", 1)[0].strip().lower()
    if media.startswith(b"application/grpc-web-text"):
        return "text"
    if media.startswith(b"application/grpc-web"):
        return "binary"
    return None


def upstream_type(content_type: bytes) -> bytes:
    """The gRPC content type for a gRPC-Web one (`+proto` and such kept)."""
    media = content_type.split(b";", 1)[0].strip().lower()
    for web in (b"application/grpc-web-text", b"application/grpc-web"):
        if media.startswith(web):
            return b"application/grpc" + media[len(web) :]
    return media


def decode_text(body: bytes) -> bytes:
    """A -text body: base64, possibly several padded segments one after
    another (each chunk a client sent, encoded on its own). ValueError when
    it is not base64."""
    body = b"".join(body.split())
    segments = _SEGMENT.findall(body)
    if sum(map(len, segments)) != len(body):
        raise ValueError("the body is not base64")
    try:
        return b"".join(base64.b64decode(segment, validate=True) for segment in segments)
    except binascii.Error as exc:
        raise ValueError(f"the body is not base64: {exc}") from None


def trailer_frame(trailers: list[tuple[bytes, bytes]]) -> bytes:
    block = b"".join(name.lower() + b": " + value + b"\r\n" for name, value in trailers)
    return b"\x80" + len(block).to_bytes(4, "big") + block


class TextEncoder:
    """Base64 of a stream, in pieces that each decode on their own: whole
    3-byte groups as they come, the rest (padded) at the end."""

    def __init__(self) -> None:
        self._rest = b""

    def feed(self, data: bytes) -> bytes:
        data = self._rest + data
        whole = len(data) - len(data) % 3
        self._rest = data[whole:]
        return base64.b64encode(data[:whole])

    def finish(self, data: bytes = b"") -> bytes:
        data, self._rest = self._rest + data, b""
        return base64.b64encode(data)
