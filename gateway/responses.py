"""Responses the route handlers give, as the ASGI handler sends them.

`json_response`: an aggregate answer. `RelayedResponse`: an answer whose body
is relayed as it comes (a proxied upstream body, later streams of events):
the handler sends `raw_headers` after the ones middleware set, then each part
of `relay`, and calls `aclose_upstream()` once it is done, however it ended.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

import orjson
from django.http import HttpResponse, StreamingHttpResponse

__all__ = ["Answer", "RelayedResponse", "json_response"]


@dataclass(frozen=True, slots=True)
class Answer:
    """An aggregate route's answer before it becomes a response: the JSON, and
    what response hooks may have changed (status, extra headers)."""

    content: bytes
    completed: bool  # did every backend answer
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def cacheable(self) -> bool:
        """A complete 200 (SPEC 3.6), with whatever headers hooks gave it."""
        return self.completed and self.status == 200

    def stored(self) -> bytes:
        """The bytes a cache keeps: the JSON as it is, or (headers set by a
        response hook) a marker byte JSON never starts with, the headers as a
        JSON line, then the JSON."""
        if not self.headers:
            return self.content
        return _DRESSED + orjson.dumps(self.headers) + b"\n" + self.content

    @classmethod
    def from_stored(cls, stored: bytes) -> Answer:
        if not stored.startswith(_DRESSED):
            return cls(stored, True)
        line, _, content = stored[1:].partition(b"\n")
        headers = tuple((str(n), str(v)) for n, v in orjson.loads(line))
        return cls(content, True, 200, headers)


_DRESSED = b"\x01"


def json_response(answer: Answer) -> HttpResponse:
    response = HttpResponse(answer.content, status=answer.status, content_type="application/json")
    response.headers["Content-Length"] = str(len(answer.content))
    response.headers["X-Gateway-Completed"] = "true" if answer.completed else "false"
    for name, value in answer.headers:
        response.headers[name] = value
    return response


class RelayedResponse(StreamingHttpResponse):
    """`relay` is sent part by part; `streaming_content` yields the same bytes
    for anything else that reads the response. With `sends_trailers`, the
    handler sends `trailers` after the body (HTTP/2 only: gRPC)."""

    sends_trailers = False

    def __init__(
        self, status: int, raw_headers: list[tuple[bytes, bytes]], relay: AsyncIterable[bytes]
    ) -> None:
        super().__init__(self._parts(relay), status=status)
        del self.headers["Content-Type"]  # Django's default; the real one is in raw_headers
        self.raw_headers = raw_headers
        self.relay = relay
        if not hasattr(self, "trailers"):  # a subclass may have set them first
            self.trailers: list[tuple[bytes, bytes]] = []

    @staticmethod
    async def _parts(relay: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
        async for part in relay:
            yield part

    async def aclose_upstream(self) -> None:
        """Release whatever feeds `relay` (an upstream connection)."""
        return

    def why_cut(self, error: Exception) -> tuple[str, str]:
        """Why `relay` failed mid-answer: a short reason for the access log
        (`idle_timeout`, `upstream_failed`) and a sentence for the log line."""
        return "upstream_failed", f"the answer failed while it was sent ({type(error).__name__})"
