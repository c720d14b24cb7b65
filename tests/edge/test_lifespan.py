"""The ASGI application's lifespan (gateway/edge/lifespan.py)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from types import FrameType

import pytest

from gateway.edge.lifespan import _drain_on_signals
from gateway.lifecycle import lifecycle


@pytest.fixture
def restore_handlers() -> Iterator[list[int]]:
    seen: list[int] = []
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def uvicorn_like(signum: int, frame: FrameType | None) -> None:
        seen.append(signum)

    for sig in saved:
        signal.signal(sig, uvicorn_like)
    yield seen
    for sig, handler in saved.items():
        signal.signal(sig, handler)
    lifecycle.draining = False


async def test_sigterm_marks_draining_ends_open_ended_connections_then_hands_over(
    restore_handlers: list[int],
) -> None:
    ended: list[str] = []
    lifecycle.open_ended.add(lambda: ended.append("stream"))
    _drain_on_signals()
    assert not lifecycle.draining
    signal.raise_signal(signal.SIGTERM)
    draining: bool = lifecycle.draining  # set by the handler the signal ran
    assert draining  # at once: /readyz answers 503 from here on
    assert restore_handlers == [signal.SIGTERM]  # the server's own handler still ran
    await asyncio.sleep(0)  # the streams are ended on the loop, not in the handler
    assert ended == ["stream"]
    assert not lifecycle.open_ended
