"""A request body handed to the route as it arrives, instead of read whole
before the route runs (gateway/edge/body.py, which makes one when the route's
kind asks for it: `streams_request`): for a kind that streams it
(gRPC over HTTP/2, whose client-streaming and bidirectional calls keep the
request open while answers flow back).

One task reads the ASGI `receive`: body parts go into a small queue the
route reads (`parts()`); while the queue is full nothing more is read, so
the client's flow-control window fills and it waits. A disconnect is kept
for the handler's watch (`watch`), which would otherwise read the body
itself. Past `limit` bytes the body is refused (PayloadTooLarge from
`parts()`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from gateway.errors import PayloadTooLarge
from gateway.types import Message, Receive

__all__ = ["BodyPump"]

_QUEUED = 8  # body parts read ahead of the route


class BodyPump:
    def __init__(self, receive: Receive, limit: int) -> None:
        self._receive = receive
        self._limit = limit
        self._parts: asyncio.Queue[bytes | None] = asyncio.Queue(_QUEUED)
        self._gone = asyncio.Event()
        self._received = 0
        self._too_large = False
        self._task: asyncio.Task[None] | None = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self._gone.set()
                if not self._parts.full():
                    self._parts.put_nowait(None)  # a reader waiting for more stops
                return
            body = message.get("body", b"")
            self._received += len(body)
            if self._received > self._limit:
                self._too_large = True
                await self._parts.put(None)
                await self._gone.wait()  # read nothing more; the route refuses it
                return
            if body:
                await self._parts.put(body)
            if not message.get("more_body", False):
                await self._parts.put(None)
                await self._wait_for_disconnect()
                return

    async def _wait_for_disconnect(self) -> None:
        while (await self._receive())["type"] != "http.disconnect":
            pass
        self._gone.set()

    async def parts(self) -> AsyncIterator[bytes]:
        """The body's parts as they come; PayloadTooLarge past the limit."""
        while (part := await self._parts.get()) is not None:
            yield part
        if self._too_large:
            raise PayloadTooLarge(f"the request body is larger than {self._limit} bytes")

    async def watch(self) -> Message:
        """For the handler's disconnect watch: returns once the client left."""
        await self._gone.wait()
        return {"type": "http.disconnect"}

    def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
        self._gone.set()
