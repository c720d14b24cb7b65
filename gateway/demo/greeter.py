"""The demo gRPC service behind `make run`'s `greeter` route: `demo.v1.Greeter`,
served over h2c by uvicorn with the gateway's own HTTP/2 protocol
(gateway/edge/autoprotocol.py), no gRPC library needed.

    syntax = "proto3";
    package demo.v1;
    service Greeter {
      rpc SayHello (HelloRequest) returns (HelloReply);               // unary
      rpc Countdown (CountdownRequest) returns (stream HelloReply);   // server streaming
    }
    message HelloRequest { string name = 1; }
    message HelloReply { string message = 1; }
    message CountdownRequest { uint32 from = 1; }

The messages are protobuf, encoded and decoded here by hand (one field each).
"""

from __future__ import annotations

from typing import Any

from gateway.pipeline.grpc.status import encode_message

__all__ = ["greeter"]

_GRPC = [(b"content-type", b"application/grpc")]
MAX_COUNT = 100


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _fields(message: bytes) -> dict[int, int | bytes]:
    """Field number -> value, for varint and length-delimited fields."""
    fields: dict[int, int | bytes] = {}
    i = 0
    while i < len(message):
        key, i = _read_varint(message, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            fields[number], i = _read_varint(message, i)
        elif wire == 2:
            size, i = _read_varint(message, i)
            fields[number], i = message[i : i + size], i + size
        else:
            raise ValueError(f"wire type {wire} is not used here")
    return fields


def _read_varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(data) or shift > 35:
            raise ValueError("truncated varint")
        byte = data[i]
        value |= (byte & 0x7F) << shift
        i, shift = i + 1, shift + 7
        if not byte & 0x80:
            return value, i


def _reply(text: str) -> bytes:
    encoded = text.encode()
    message = b"\x0a" + _varint(len(encoded)) + encoded
    return b"\x00" + len(message).to_bytes(4, "big") + message


def _messages(body: bytes) -> list[bytes]:
    out = []
    while len(body) >= 5:
        size = int.from_bytes(body[1:5], "big")
        out.append(body[5 : 5 + size])
        body = body[5 + size :]
    return out


async def greeter(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    method = scope["path"].rsplit("/", 1)[-1]
    replies: list[bytes] = []
    status, detail = b"0", b""
    try:
        request = _fields((_messages(body) or [b""])[0])
        if scope["path"] == "/demo.v1.Greeter/SayHello":
            name = request.get(1, b"")
            who = name.decode("utf-8", "replace") if isinstance(name, bytes) else "stranger"
            replies = [_reply(f"Hello, {who or 'stranger'}!")]
        elif scope["path"] == "/demo.v1.Greeter/Countdown":
            start = request.get(1, 3)
            start = min(start if isinstance(start, int) else 3, MAX_COUNT)
            replies = [_reply(str(n)) for n in range(start, 0, -1)]
        else:
            status, detail = b"12", f"no method {method}".encode()
    except ValueError as exc:
        status, detail = b"3", str(exc).encode()
    await send({"type": "http.response.start", "status": 200, "headers": _GRPC, "trailers": True})
    for reply in replies:
        await send({"type": "http.response.body", "body": reply, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})
    trailers = [(b"grpc-status", status)]
    if detail:
        trailers.append((b"grpc-message", encode_message(detail.decode())))
    await send({"type": "http.response.trailers", "headers": trailers, "more_trailers": False})
