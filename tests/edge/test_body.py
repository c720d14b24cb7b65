"""The request body as it arrives (gateway/edge/body.py): refused by its
declared length before anything is read, or as soon as it passes the limit;
too slow is 408; a client that leaves gives None."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterable
from typing import Any

from gateway.edge.body import read_body
from gateway.errors import PayloadTooLarge, RequestTimeout
from gateway.types import Message, Receive
from tests.conftest import envelope


def messages(parts: Iterable[Message], delay: float = 0.0) -> tuple[Receive, list[Message]]:
    pending = list(parts)
    taken: list[Message] = []

    async def receive() -> Message:
        if delay:
            await asyncio.sleep(delay)
        message = pending.pop(0) if pending else {"type": "http.disconnect"}
        taken.append(message)
        return message

    return receive, taken


def scope(length: int | None = None) -> dict[str, Any]:
    headers = [] if length is None else [(b"content-length", str(length).encode())]
    return {"type": "http", "headers": headers}


def chunks(*bodies: bytes) -> list[Message]:
    return [
        {"type": "http.request", "body": b, "more_body": i < len(bodies) - 1}
        for i, b in enumerate(bodies)
    ]


async def test_a_body_is_spooled_and_its_size_recorded() -> None:
    made = envelope()
    receive, _ = messages(chunks(b"abc", b"def"))
    body = await read_body(scope(6), receive, made, 10, 1.0)
    assert body is not None and body.read() == b"abcdef" and made.body_size == 6
    assert made.refused is None
    body.close()


async def test_no_body_costs_one_message() -> None:
    receive, taken = messages(chunks(b""))
    body = await read_body(scope(), receive, envelope(), 10, 1.0)
    assert body is not None and body.read() == b"" and len(taken) == 1


async def test_a_declared_length_over_the_limit_is_refused_unread() -> None:
    made = envelope()
    receive, taken = messages(chunks(b"x" * 20))
    body = await read_body(scope(20), receive, made, 10, 1.0)
    assert body is not None and body.read() == b"" and taken == []
    assert isinstance(made.refused, PayloadTooLarge)
    assert made.refused.headers["Connection"] == "close"


async def test_a_body_passing_the_limit_is_refused_as_it_arrives() -> None:
    made = envelope()
    receive, taken = messages(chunks(b"x" * 6, b"x" * 6, b"x" * 6))
    (await read_body(scope(), receive, made, 10, 1.0) or io.BytesIO()).close()
    assert isinstance(made.refused, PayloadTooLarge) and len(taken) == 2  # not the third


async def test_a_body_too_slow_is_408() -> None:
    made = envelope()
    receive, _ = messages(chunks(b"x", b"x"), delay=0.2)
    (await read_body(scope(2), receive, made, 10, 0.1) or io.BytesIO()).close()
    assert isinstance(made.refused, RequestTimeout)


async def test_a_client_that_leaves_gives_none() -> None:
    receive, _ = messages([{"type": "http.request", "body": b"x", "more_body": True}])
    assert await read_body(scope(5), receive, envelope(), 10, 1.0) is None
