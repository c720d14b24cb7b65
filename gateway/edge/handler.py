"""The ASGI entry for HTTP: Django's ASGIHandler without its per-request threads.

Django's stock handler wraps every request in asgiref's ThreadSensitiveContext,
closes every response through `sync_to_async`, logs every 4xx/5xx through
`sync_to_async`, and runs the request_started / request_finished receivers
(database and cache cleanup: we have neither). Each costs a thread hop; together
they cap a trivial async view at under 1,000 req/s where this handler serves
several thousand. What stays is Django's: the request class, URL resolving, the
middleware chain and async views.

It also does what the stock handler cannot:
- builds the request's envelope (gateway/edge/intake.py) before reading the body:
  the route is matched once, and its `max_body_size` is enforced as the body
  arrives (gateway/edge/body.py: 413 before it is stored, not after);
- answers its own errors (undecodable requests) as problem+json;
- sends relayed bodies part by part and large answers in pieces, each within
  CLIENT_SEND_TIMEOUT: a client that reads nothing that long is cut off, and
  what its answer held (memory budget, an upstream connection) is given back;
- ends a stream that fails mid-answer (silence past idle_timeout, an upstream
  that broke off) by cutting the connection, logged once by the gateway;
- cancels the route's stack when the client disconnects, and never prints a
  traceback.

Pinned to the Django version in requirements.lock; tests/edge/test_handler.py
checks the Django methods and signals it relies on.
"""

from __future__ import annotations

import asyncio
import io
import logging
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

from gateway import serving
from gateway.asgi import cut_connection, may_block
from gateway.bodypump import BodyPump
from gateway.edge.body import read_body
from gateway.edge.intake import drop_underscore_headers, open_envelope, too_many_query_fields
from gateway.edge.middleware import EdgeRequest
from gateway.envelope import Envelope
from gateway.errors import problem_response
from gateway.observe.accesslog import CLIENT_CLOSED, AccessLog
from gateway.observe.live import LIVE
from gateway.observe.readiness import PROBES
from gateway.responses import RelayedResponse
from gateway.types import Message, Receive, Scope, Send

__all__ = ["GatewayHandler"]

logger = logging.getLogger("gateway")
SEND_PIECE = 1024 * 1024  # answers larger than this go out in pieces of this size


class _ClientStalled(Exception):
    """The client took nothing of the answer for CLIENT_SEND_TIMEOUT."""


def _disconnect_request_signals() -> None:
    """Django's own request signal receivers only clean up databases, caches and
    URLconf state we do not use; each would otherwise run (or hop threads) per
    request. tests/edge/test_handler.py checks that none is left."""
    from django.core.cache import close_caches
    from django.core.handlers.base import reset_urlconf

    signals.request_started.disconnect(reset_queries)
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    signals.request_finished.disconnect(reset_urlconf)
    signals.request_finished.disconnect(close_caches)


class GatewayHandler(ASGIHandler):
    request_class = EdgeRequest

    def __init__(self) -> None:
        super().__init__()
        _disconnect_request_signals()
        set_script_prefix("/")
        self.access_log = AccessLog(settings.LOG_FORMAT, enabled=settings.ACCESS_LOG)
        self.body_grace = settings.CLIENT_BODY_TIMEOUT
        self.trusted = settings.TRUSTED_PROXIES
        self.drop_underscores = not settings.ALLOW_UNDERSCORE_HEADERS
        self.send_timeout = settings.CLIENT_SEND_TIMEOUT

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise ValueError(f"GatewayHandler serves HTTP only, not {scope['type']!r}")
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        gateway = serving.current()
        if self.drop_underscores:
            drop_underscore_headers(scope)
        envelope = open_envelope(scope, gateway, self.trusted)
        if (query := scope["query_string"]) and (refusal := too_many_query_fields(query)):
            envelope.refused = refusal
        if scope["path"] not in PROBES:
            envelope.live = True
            LIVE.begin(envelope.route_name)
        limit = settings.FILE_UPLOAD_MAX_MEMORY_SIZE
        if (route := envelope.route) is not None:
            limit = route.max_body_size
        elif gateway is not None:
            limit = gateway.settings.max_body_size
        pump = None
        streams = getattr(route.kind, "streams_request", None) if route is not None else None
        body: IO[bytes] | None
        if streams is not None and envelope.refused is None and streams(scope):
            pump = envelope.body_pump = BodyPump(receive, limit)  # the route reads it
            body = io.BytesIO()
        else:
            body = await read_body(scope, receive, envelope, limit, self.body_grace)
        if body is None:  # the client went away before sending its whole body
            if envelope.live:
                LIVE.end(envelope.route_name, CLIENT_CLOSED, 0.0, counted=False)
            return
        try:
            request = EdgeRequest(scope, body)
        except Exception:  # undecodable headers or query string
            body.close()
            await self._undecodable(envelope, scope, send, started)
            return
        request.envelope, request.gateway = envelope, gateway
        if pump is None:
            await self._respond(request, receive, send, started)
            return
        try:  # the pump reads the body: the watch only hears of a disconnect
            await self._respond(request, pump.watch, send, started)
        finally:
            pump.stop()

    async def _undecodable(
        self, envelope: Envelope, scope: Scope, send: Send, started: float
    ) -> None:
        response = problem_response(
            400,
            "the request could not be decoded",
            request_id=envelope.request_id,
            headers={"Connection": "close", "X-Request-ID": envelope.request_id},
        )
        await self.send_response(response, send)
        self.access_log.record(envelope, scope["method"], scope["path"], 400, started)

    async def _respond(
        self, request: EdgeRequest, receive: Receive, send: Send, started: float
    ) -> None:
        """Run the middleware chain and view, send the response; cancel all of it
        if the client disconnects first. Then write the access log line."""
        task = asyncio.current_task()
        assert task is not None
        watch = _DisconnectWatch(receive, task)
        response: HttpResponseBase | None = None
        sending = False
        try:
            response = await self.get_response_async(request)
            sending = True
            await self.send_response(response, send)
        except asyncio.CancelledError:
            if watch.disconnected and task.uncancel() == 0:
                return  # the client left; everything it started was cancelled
            raise
        except _ClientStalled:
            reason = f"the client read nothing for {self.send_timeout:g} s"
            self._cut(request, send, "send_timeout", reason, flush=False)
        except Exception as exc:
            if not sending:
                raise
            # The answer had started (a stream went silent, an upstream broke
            # off): all that is left is to cut the connection.
            cut, reason = "upstream_failed", f"the answer failed while it was sent: {exc!r}"
            if isinstance(response, RelayedResponse):
                cut, reason = response.why_cut(exc)
            self._cut(request, send, cut, reason, flush=True)
        finally:
            watch.stop()
            await self._finish(request, response, watch.disconnected, started)

    @staticmethod
    def _cut(request: EdgeRequest, send: Send, cut: str, reason: str, *, flush: bool) -> None:
        """Cut the client's connection mid-answer; one log line says why."""
        envelope = request.envelope
        envelope.cut = cut
        cut_connection(send, flush=flush)
        level = logging.WARNING if cut == "upstream_failed" else logging.INFO
        logger.log(
            level,
            "answer cut off (%s): %s",
            cut,
            reason,
            extra={"request_id": envelope.request_id, "route": envelope.route_name},
        )

    async def _finish(
        self,
        request: EdgeRequest,
        response: HttpResponseBase | None,
        disconnected: bool,
        started: float,
    ) -> None:
        """However the request ended: release what it held, log its line."""
        if isinstance(response, RelayedResponse):
            await response.aclose_upstream()
        if response is not None:
            response.close()
        envelope = request.envelope
        envelope.answered()
        status = response.status_code if response is not None else 500
        if disconnected:
            status = CLIENT_CLOSED
        self.access_log.record(envelope, request.method or "", request.path, status, started)

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
        trailers = False
        if isinstance(response, RelayedResponse):
            headers.extend(response.raw_headers)
            trailers = response.sends_trailers
        head: dict[str, Any] = {
            "type": "http.response.start",
            "status": response.status_code,
            "headers": headers,
        }
        if trailers:
            head["trailers"] = True
        await send(head)
        put = self._put
        if isinstance(response, RelayedResponse):  # a relayed body, as it comes
            async for part in response.relay:
                if part:
                    await put(send, {"type": "http.response.body", "body": part, "more_body": True})
            await put(send, {"type": "http.response.body", "body": b"", "more_body": False})
            if trailers:  # gRPC's status: known once the body has ended
                await put(send, {"type": "http.response.trailers", "headers": response.trailers})
        elif response.streaming:
            parts = cast(AsyncGenerator[bytes], aiter(cast(StreamingHttpResponse, response)))
            async with aclosing(parts):
                async for part in parts:
                    if part:
                        message = {"type": "http.response.body", "body": part, "more_body": True}
                        await put(send, message)
            await put(send, {"type": "http.response.body", "body": b"", "more_body": False})
        else:
            body = cast(HttpResponse, response).content
            # uvicorn waits for the socket to drain before a write, not after:
            # a large answer sent in one message would sit in the transport's
            # buffer, uncounted, after this returns. In pieces, the last send
            # returns once all but one piece has left.
            for start in range(0, max(len(body), 1), SEND_PIECE):
                end = start + SEND_PIECE
                piece = body if len(body) <= SEND_PIECE else body[start:end]
                await put(
                    send,
                    {"type": "http.response.body", "body": piece, "more_body": end < len(body)},
                )

    async def _put(self, send: Send, message: Message) -> None:
        """Hand a part of the answer to the server, which waits while the
        client's socket is full: at most CLIENT_SEND_TIMEOUT."""
        if not may_block(send):
            await send(message)
            return
        try:
            async with asyncio.timeout(self.send_timeout):
                await send(message)
        except TimeoutError:
            raise _ClientStalled from None


class _DisconnectWatch:
    """Cancels the request's task when the client goes away before the answer
    has been sent (everything the request started is cancelled with it)."""

    def __init__(self, receive: Receive, task: asyncio.Task[Any]) -> None:
        self.disconnected = False
        self._finished = False
        self._task = task
        self._watcher: asyncio.Task[None] | None = asyncio.create_task(self._watch(receive))

    async def _watch(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        if not self._finished:
            self.disconnected = True
            self._task.cancel()

    def stop(self) -> None:
        """Stop watching. The watcher task's frame refers to this object; the
        object lets go of the task so the two never form a cycle (a cycle per
        request would leave the collector to free every request's objects)."""
        self._finished = True
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.cancel()
