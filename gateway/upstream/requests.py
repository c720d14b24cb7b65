"""httpx requests for the hot path, built without httpx's per-call overhead.

httpx spends ~50 µs building a URL and a Request (it re-parses and
re-validates both) and ~100 µs more in `AsyncClient.send` (auth, redirect and
cookie plumbing), per upstream call. The pipeline renders every URL itself
(fully percent-encoded, see gateway/upstream/render.py) and needs none of that
plumbing, so it builds the same httpx objects directly and hands them to the
client's transport:

- `Origin.url()` makes an `httpx.URL` from a parse of the upstream's origin
  done once at load time, plus the rendered path and query;
- `build_request()` makes an `httpx.Request` with exactly the given headers
  (plus Host and Content-Length, as httpx would add them);
- `send()` calls the transport the client would use for the URL
  (`_transport_for_url`, which is also where respx hooks in), and sets
  `response.request`, as the client would.

These lean on httpx 0.28 internals (`URL._uri_reference`, `_urlparse.ParseResult`,
`AsyncClient._transport_for_url`); tests/upstream/test_requests.py compares every object
with what httpx itself builds, so an httpx upgrade that changes them fails there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from httpx._urlparse import ParseResult

from gateway.types import Failure

__all__ = [
    "Origin",
    "build_request",
    "classify_transport_error",
    "normalized_headers",
    "reserve_traceparent",
    "retarget",
    "send",
    "set_traceparent",
]

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})  # an empty body is sent as Content-Length: 0


class Origin:
    """A target's scheme, host and port, parsed and validated once."""

    __slots__ = ("_reference", "host_header")

    def __init__(self, scheme: str, host: str, port: int) -> None:
        parsed = httpx.URL(scheme=scheme, host=host, port=port)
        self._reference = parsed._uri_reference
        self.host_header = (b"host", parsed.netloc)

    def url(self, raw_path: str, query: str = "") -> httpx.URL:
        """`raw_path` and `query` must already be percent-encoded."""
        ref = self._reference
        url = httpx.URL.__new__(httpx.URL)
        url._uri_reference = ParseResult(
            ref.scheme, ref.userinfo, ref.host, ref.port, raw_path, query or None, None
        )
        return url


class _StreamedBody(httpx.AsyncByteStream):
    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._chunks:
            yield chunk


def build_request(
    method: str,
    url: httpx.URL,
    host_header: tuple[bytes, bytes],
    headers: list[tuple[bytes, bytes]],
    content: bytes | AsyncIterator[bytes] | None = None,
    *,
    content_length: int | None = None,
    extensions: dict[str, object] | None = None,
) -> httpx.Request:
    """An httpx.Request with `headers` as given: names lower-case, without Host
    or Content-Length, which are added here (a streamed body needs
    `content_length`)."""
    request = httpx.Request.__new__(httpx.Request)
    request.method = method
    request.url = url
    raw = [host_header, *headers]
    if isinstance(content, bytes) and (content or method in _BODY_METHODS):
        raw.append((b"content-length", str(len(content)).encode()))
    if isinstance(content, bytes):
        request.stream = httpx.ByteStream(content)
        request._content = content
    elif content is not None:
        if content_length is not None:
            raw.append((b"content-length", str(content_length).encode()))
        request.stream = _StreamedBody(content)  # no _content: httpx treats it as unread
    else:
        if method in _BODY_METHODS:
            raw.append((b"content-length", b"0"))
        request.stream = httpx.ByteStream(b"")
        request._content = b""
    request.headers = normalized_headers(raw)
    request.extensions = extensions if extensions is not None else {}
    return request


def retarget(request: httpx.Request, origin: Origin) -> None:
    """Point a request built by `build_request` at another target: its URL's
    origin and its Host header (the first header) change, nothing else."""
    ref = request.url._uri_reference
    url = origin.url(ref.path, ref.query or "")
    request.url = url
    name, value = origin.host_header
    request.headers._list[0] = (name, name, value)


def normalized_headers(raw: list[tuple[bytes, bytes]]) -> httpx.Headers:
    """httpx.Headers from (lower-case name, value) bytes pairs, without httpx
    normalising them again (what it would do to them changes nothing)."""
    headers = httpx.Headers.__new__(httpx.Headers)
    headers._list = [(name, name, value) for name, value in raw]
    headers._encoding = None
    return headers


def reserve_traceparent(request: httpx.Request) -> int:
    """A place in the request's headers for each attempt's traceparent."""
    items = request.headers._list
    items.append((b"traceparent", b"traceparent", b""))
    return len(items) - 1


def set_traceparent(request: httpx.Request, slot: int, value: bytes) -> None:
    """This attempt's traceparent, in place of the last attempt's."""
    request.headers._list[slot] = (b"traceparent", b"traceparent", value)


async def send(client: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
    """Send through the client's transport; the body is left to stream."""
    response = await client._transport_for_url(request.url).handle_async_request(request)
    response.request = request
    return response


def classify_transport_error(exc: httpx.TransportError) -> Failure:
    """httpx (or the transport under it) failed: a timeout or a connection
    error (a body it could not decode is an invalid one)."""
    if isinstance(exc, httpx.TimeoutException):
        return Failure.TIMEOUT
    if isinstance(exc, httpx.DecodingError):
        return Failure.INVALID
    return Failure.CONNECT
