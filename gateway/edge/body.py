"""The request body, read before the view runs (Django's handler does the same),
under the route's `max_body_size` and a minimum pace, as it arrives.

The body goes into a spooled file: memory up to FILE_UPLOAD_MAX_MEMORY_SIZE
(2.5 MiB), then disk. It is refused by its Content-Length before anything is
read, or as soon as the bytes received pass the limit (413); a body that
arrives too slowly (CLIENT_BODY_TIMEOUT of grace, then MIN_BODY_RATE) is
refused with 408. A refusal is recorded in the envelope (`refused`), with
`Connection: close` (the rest of the body is still on the wire), and
answered by the route's stack after its policies (gateway/pipeline/refusals.py).
"""

from __future__ import annotations

import asyncio
import io
import tempfile
from typing import IO

from django.conf import settings

from gateway.edge.protocol import MIN_BODY_RATE
from gateway.envelope import Envelope
from gateway.errors import PayloadTooLarge, RequestTimeout
from gateway.types import Message, Receive, Scope

__all__ = ["read_body"]


class _ClientLeft(Exception):
    pass


async def read_body(
    scope: Scope, receive: Receive, envelope: Envelope, limit: int, grace: float
) -> IO[bytes] | None:
    """The body (empty when refused; see the envelope), or None when the
    client went away before sending all of it."""
    declared = _content_length(scope)
    if declared is not None and declared > limit:
        return _refuse(envelope, PayloadTooLarge(f"the request body is larger than {limit} bytes"))
    first = None
    if not declared:
        first = await receive()  # a request without a body: one message, already here
        if first["type"] == "http.request" and not first.get("body") and not first.get("more_body"):
            return io.BytesIO()
    body = tempfile.SpooledTemporaryFile(  # noqa: SIM115  (the request owns and closes it)
        max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE, mode="w+b"
    )
    try:
        envelope.body_size = await _spool(receive, first, body, limit, grace)
    except _ClientLeft:
        body.close()
        return None
    except (PayloadTooLarge, RequestTimeout) as error:
        body.close()
        return _refuse(envelope, error)
    body.seek(0)
    return body


async def _spool(
    receive: Receive, first: Message | None, body: IO[bytes], limit: int, grace: float
) -> int:
    """Write the body into `body` as it arrives; its size."""
    size = 0
    grace_ends = asyncio.get_running_loop().time() + grace
    try:
        async with asyncio.timeout_at(grace_ends) as deadline:
            while True:
                message, first = first or await receive(), None
                if message["type"] == "http.disconnect":
                    raise _ClientLeft
                if chunk := message.get("body", b""):
                    size += len(chunk)
                    if size > limit:
                        raise PayloadTooLarge(f"the request body is larger than {limit} bytes")
                    # A write past the memory threshold goes to disk; it lands in
                    # the page cache and costs less than a thread hop would.
                    body.write(chunk)
                    deadline.reschedule(grace_ends + size / MIN_BODY_RATE)
                if not message.get("more_body", False):
                    return size
    except TimeoutError:
        raise RequestTimeout("the request body arrived too slowly") from None


def _refuse(envelope: Envelope, error: PayloadTooLarge | RequestTimeout) -> IO[bytes]:
    error.headers["Connection"] = "close"
    envelope.refused = error
    return io.BytesIO()


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None
