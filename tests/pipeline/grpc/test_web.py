"""gRPC-Web translation (gateway/pipeline/grpc/web.py)."""

from __future__ import annotations

import base64

import pytest

from gateway.pipeline.grpc.web import (
    TextEncoder,
    decode_text,
    trailer_frame,
    upstream_type,
    web_mode,
)


@pytest.mark.parametrize(
    ("content_type", "mode"),
    [
        (b"application/grpc-web", "binary"),
        (b"application/grpc-web+proto", "binary"),
        (b"Application/gRPC-Web-Text; charset=x", "text"),
        (b"application/grpc-web-text+proto", "text"),
        (b"application/grpc", None),
        (b"application/json", None),
    ],
)
def test_modes(content_type: bytes, mode: str | None) -> None:
    assert web_mode(content_type) == mode


def test_upstream_types() -> None:
    assert upstream_type(b"application/grpc-web") == b"application/grpc"
    assert upstream_type(b"application/grpc-web+proto") == b"application/grpc+proto"
    assert upstream_type(b"application/grpc-web-text+proto") == b"application/grpc+proto"


def test_text_bodies_in_several_padded_segments() -> None:
    body = base64.b64encode(b"ab") + base64.b64encode(b"cde") + b"\n" + base64.b64encode(b"f")
    assert decode_text(body) == b"abcdef"


@pytest.mark.parametrize("body", [b"not base64!", b"QUJD=QQ", b"A"])
def test_a_text_body_that_is_not_base64(body: bytes) -> None:
    with pytest.raises(ValueError, match="base64"):
        decode_text(body)


def test_the_encoder_makes_pieces_that_decode_alone() -> None:
    encoder = TextEncoder()
    pieces = [encoder.feed(b"a"), encoder.feed(b"bcde"), encoder.finish(b"fg")]
    assert all(len(p) % 4 == 0 for p in pieces)
    assert b"".join(base64.b64decode(p) for p in pieces) == b"abcdefg"


def test_the_trailer_frame() -> None:
    frame = trailer_frame([(b"Grpc-Status", b"0"), (b"x-a", b"1")])
    assert frame == b"\x80\x00\x00\x00\x18grpc-status: 0\r\nx-a: 1\r\n"
