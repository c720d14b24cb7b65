"""The ASGI entry for HTTP: Django's ASGIHandler without its per-request threads.

Django's stock handler wraps every request in asgiref's ThreadSensitiveContext,
closes every response through `sync_to_async`, logs every 4xx/5xx through
`sync_to_async`, and runs the request_started / request_finished receivers
(database and cache cleanup: we have neither). Each costs a thread hop; together
they cap a trivial async view at under 1,000 req/s where this handler serves
several thousand. What stays is Django's: the request class, URL resolving, the
middleware chain and async views.

It also does what the stock handler cannot:
- matches the route before reading the body, so the route's `max_body_size` is
  enforced as the body arrives (413 before it is stored, not after);
- answers its own errors (undecodable requests) as problem+json;
- cancels the view when the client disconnects, and never prints a traceback.

Pinned to the Django version in requirements.lock; tests/test_handler.py
checks the methods it relies on.
"""

from __future__ import annotations

import asyncio
import io
import logging
import tempfile
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import IO, Any, cast

from django.conf import settings
from django.core import signals
from django.core.handlers.asgi import ASGIHandler
from django.db import close_old_connections, reset_queries
from django.http import HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.urls import set_script_prefix

from gateway import registry
from gateway.edge.protocol import MIN_BODY_RATE
from gateway.envelope import GatewayRequest, RequestContext, make_request_id
from gateway.errors import PayloadTooLarge, RequestTimeout, problem_response
from gateway.observe.accesslog import CLIENT_CLOSED, AccessLog
from gateway.router import Match

__all__ = ["GatewayHandler"]

logger = logging.getLogger("gateway")
SEND_PIECE = 1024 * 1024  # answers larger than this go out in pieces of this size
type Scope = dict[str, Any]
type Receive = Any
type Send = Any


def _disconnect_request_signals() -> None:
    """Django's own request signal receivers only clean up databases, caches and
    URLconf state we do not use; each would otherwise run (or hop threads) per
    request. tests/test_handler.py checks that none is left."""
    from django.core.cache import close_caches
    from django.core.handlers.base import reset_urlconf

    signals.request_started.disconnect(reset_queries)
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    signals.request_finished.disconnect(reset_urlconf)
    signals.request_finished.disconnect(close_caches)


class GatewayHandler(ASGIHandler):
    request_class = GatewayRequest

    def __init__(self) -> None:
        super().__init__()
        _disconnect_request_signals()
        set_script_prefix("/")
        self.access_log = AccessLog(settings.LOG_FORMAT, enabled=settings.ACCESS_LOG)
        self.body_grace = settings.CLIENT_BODY_TIMEOUT

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise ValueError(f"GatewayHandler serves HTTP only, not {scope['type']!r}")
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        state = registry.current()
        limit = state.settings.max_body_size if state else settings.FILE_UPLOAD_MAX_MEMORY_SIZE
        if state is not None:
            raw_path = scope.get("raw_path")
            path = raw_path.decode("latin-1") if raw_path else scope["path"]
            found = state.match(scope["method"], path)
            scope["gateway.state"] = state
            scope["gateway.match"] = found
            if isinstance(found, Match):
                limit = found.route.max_body_size
        body = await self._read_body(scope, receive, limit)
        if body is None:
            return  # the client went away before sending its whole body
        request = self._create_request(scope, body)
        if isinstance(request, HttpResponseBase):
            await self.send_response(request, send)
            client = scope.get("client") or ("unknown", 0)
            ctx = RequestContext(request.headers["X-Request-ID"], client[0], "", "", "")
            self.access_log.record(ctx, scope["method"], scope["path"], 400, started)
            return
        await self._respond(request, receive, send, started)

    async def _read_body(self, scope: Scope, receive: Receive, limit: int) -> IO[bytes] | None:
        """Read the body into a spooled file (memory, then disk), refusing it
        once it passes `limit`: by its Content-Length before reading anything,
        otherwise as soon as the bytes received pass the limit. A body that
        arrives too slowly (see gateway/edge/protocol.py) is refused with 408."""
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            return self._refuse(
                scope, PayloadTooLarge(f"the request body is larger than {limit} bytes")
            )
        pending: list[dict[str, Any]] = []
        if not declared:
            first = await receive()  # a request without a body: one message, already here
            if (
                first["type"] == "http.request"
                and not first.get("body")
                and not first.get("more_body")
            ):
                scope["gateway.body_size"] = 0
                return io.BytesIO()
            pending.append(first)
        body: IO[bytes] | None = None
        size = 0
        loop = asyncio.get_running_loop()
        grace_ends = loop.time() + self.body_grace
        try:
            async with asyncio.timeout_at(grace_ends) as deadline:
                while True:
                    message = pending.pop() if pending else await receive()
                    if message["type"] == "http.disconnect":
                        if body is not None:
                            body.close()
                        return None
                    chunk = message.get("body", b"")
                    if chunk:
                        size += len(chunk)
                        if size > limit:
                            if body is not None:
                                body.close()
                            error = PayloadTooLarge(
                                f"the request body is larger than {limit} bytes"
                            )
                            return self._refuse(scope, error)
                        if body is None:
                            # Owned by the request from here on; it closes the file.
                            body = tempfile.SpooledTemporaryFile(  # noqa: SIM115
                                max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE, mode="w+b"
                            )
                        # A write past the memory threshold goes to disk; it lands in
                        # the page cache and costs less than a thread hop would.
                        body.write(chunk)
                        deadline.reschedule(grace_ends + size / MIN_BODY_RATE)
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            if body is not None:
                body.close()
            return self._refuse(scope, RequestTimeout("the request body arrived too slowly"))
        scope["gateway.body_size"] = size
        if body is None:
            return io.BytesIO()
        body.seek(0)
        return body

    @staticmethod
    def _refuse(scope: Scope, error: PayloadTooLarge | RequestTimeout) -> IO[bytes]:
        """Answer `error` from the view (so middleware still runs). The rest of
        the body is still on the wire: close the connection after answering."""
        error.headers["Connection"] = "close"
        scope["gateway.body_error"] = error
        scope["gateway.body_size"] = 0
        return io.BytesIO()

    def _create_request(self, scope: Scope, body: IO[bytes]) -> GatewayRequest | HttpResponseBase:
        try:
            return GatewayRequest(scope, body)
        except Exception:  # undecodable headers or query string
            body.close()
            request_id = make_request_id(None)
            return problem_response(
                400,
                "the request could not be decoded",
                request_id=request_id,
                headers={"Connection": "close", "X-Request-ID": request_id},
            )

    async def _respond(
        self, request: GatewayRequest, receive: Receive, send: Send, started: float
    ) -> None:
        """Run the middleware chain and view, send the response; cancel all of it
        if the client disconnects first. Then write the access log line."""
        task = asyncio.current_task()
        assert task is not None
        state = {"finished": False, "disconnected": False}

        async def watch_disconnect() -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    break
            if not state["finished"]:
                state["disconnected"] = True
                task.cancel()

        watcher = asyncio.create_task(watch_disconnect())
        response: HttpResponseBase | None = None
        sending = False
        try:
            response = await self.get_response_async(request)
            sending = True
            await self.send_response(response, send)
        except asyncio.CancelledError:
            if state["disconnected"] and task.uncancel() == 0:
                return  # the client left; everything it started was cancelled
            raise
        except Exception:
            if not sending:
                raise
            # The response had started (an upstream broke mid-stream): all we
            # can do is cut the connection, which the server does when we return.
            logger.warning(
                "response aborted while streaming", exc_info=logger.isEnabledFor(logging.DEBUG)
            )
        finally:
            state["finished"] = True
            watcher.cancel()
            if response is not None:
                if (closer := getattr(response, "aclose_upstream", None)) is not None:
                    await closer()
                response.close()
            if (ctx := getattr(request, "gateway", None)) is not None:
                if ctx.memory is not None:
                    ctx.memory.release()
                status = response.status_code if response is not None else 500
                if state["disconnected"]:
                    status = CLIENT_CLOSED
                self.access_log.record(ctx, request.method or "", request.path, status, started)

    def make_view_atomic(self, view: Any) -> Any:
        """There is no database: views never run in a transaction (Django's
        version looks at every configured connection on every request)."""
        return view

    async def get_response_async(self, request: Any) -> HttpResponseBase:
        """Django's, minus `set_urlconf` (the default URLconf is the only one)
        and minus logging 4xx/5xx on a thread: problem responses say it all."""
        chain: Any = self._middleware_chain  # type: ignore[attr-defined]
        response = await chain(request)
        response._resource_closers.append(request.close)
        return cast(HttpResponseBase, response)

    async def send_response(self, response: HttpResponseBase, send: Send) -> None:
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.items()]
        if (raw := getattr(response, "raw_headers", None)) is not None:
            headers.extend(raw)
        await send(
            {"type": "http.response.start", "status": response.status_code, "headers": headers}
        )
        if (relay := getattr(response, "relay", None)) is not None:  # a proxied body, as it comes
            async for part in relay:
                if part:
                    await send({"type": "http.response.body", "body": part, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        elif response.streaming:
            parts = cast(AsyncGenerator[bytes], aiter(cast(StreamingHttpResponse, response)))
            async with aclosing(parts):
                async for part in parts:
                    if part:
                        await send({"type": "http.response.body", "body": part, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        else:
            body = cast(HttpResponse, response).content
            # uvicorn waits for the socket to drain before a write, not after:
            # a large answer sent in one message would sit in the transport's
            # buffer, uncounted, after this returns. In pieces, the last send
            # returns once all but one piece has left.
            for start in range(0, max(len(body), 1), SEND_PIECE):
                end = start + SEND_PIECE
                piece = body if len(body) <= SEND_PIECE else body[start:end]
                await send(
                    {"type": "http.response.body", "body": piece, "more_body": end < len(body)}
                )


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None
