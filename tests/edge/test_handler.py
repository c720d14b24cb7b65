"""The lean ASGI handler and the middleware stack (gateway/edge/handler.py).

The handler subclasses Django's ASGIHandler and relies on some of its
internals; these tests fail loudly if a Django upgrade moves them."""

from __future__ import annotations

import asyncio
import gc
import inspect
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import orjson
import pytest
import respx
from django.conf import settings
from django.core import signals
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.base import BaseHandler
from django.utils.deprecation import MiddlewareMixin
from django.utils.module_loading import import_string

from gateway import serving
from gateway.assembly import build_gateway
from gateway.edge.handler import GatewayHandler
from gateway.runtime import Runtime
from tests.conftest import table
from tests.rawserver import RawServer, read_request


def test_django_internals_the_handler_relies_on() -> None:
    assert inspect.iscoroutinefunction(ASGIHandler.send_response)
    assert "receive" in inspect.signature(ASGIHandler.read_body).parameters
    assert hasattr(BaseHandler, "load_middleware")
    handler = GatewayHandler()
    chain = handler._middleware_chain  # type: ignore[attr-defined]
    assert inspect.iscoroutinefunction(chain)  # loaded in async mode


def test_middleware_is_our_own_and_async_only() -> None:
    for path in settings.MIDDLEWARE:
        assert path.startswith("gateway."), path
        cls = import_string(path)
        assert not issubclass(cls, MiddlewareMixin), path
        assert cls.async_capable is True, path
        assert cls.sync_capable is False, path


def test_no_handler_is_adapted_to_sync(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="django.request"), settings_debug():
        GatewayHandler()
    assert not [r for r in caplog.records if "adapted" in r.getMessage()]


def test_request_signal_receivers_are_gone() -> None:
    GatewayHandler()
    assert signals.request_started.receivers == []
    assert signals.request_finished.receivers == []


class settings_debug:
    def __enter__(self) -> None:
        self.previous = settings.DEBUG
        settings.DEBUG = True

    def __exit__(self, *exc: object) -> None:
        settings.DEBUG = self.previous


# --- the ASGI cycle, with a fake receive and send ----------------------------------
ROUTES = """
version: 1
settings: {max_body_size: 1KiB}
upstreams: {u: {url: "http://u.test"}}
routes:
  - {name: agg, path: /agg, methods: [GET, POST], backends: [{upstream: u, path: /data, key: d}]}
  - {name: pass, path: "/p/{rest:path}", methods: [GET, POST], proxy: {upstream: u, path: "/{rest}"}}
"""


class Exchange:
    """A client of the handler: the messages it sends and receives."""

    def __init__(self, *messages: dict[str, Any]) -> None:
        self.incoming = list(messages)
        self.sent: list[Mapping[str, Any]] = []
        self.gone = asyncio.Event()  # set: the client disconnects

    async def receive(self) -> dict[str, Any]:
        if self.incoming:
            return self.incoming.pop(0)
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Mapping[str, Any]) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])

    @property
    def headers(self) -> dict[bytes, bytes]:
        return {name.lower(): value for name, value in self.sent[0]["headers"]}

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent[1:])


def http_scope(method: str, path: str, headers: list[tuple[bytes, bytes]] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    return {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": list(headers),
        "client": ("192.0.2.7", 4000),
        "server": ("127.0.0.1", 8000),
        "scheme": "http",
        "http_version": "1.1",
        "root_path": "",
    }


@pytest.fixture
async def handler() -> AsyncIterator[GatewayHandler]:
    previous = serving.current()
    runtime = Runtime(redis_url="", failure_mode="open")
    serving.install(build_gateway(table(ROUTES), runtime))
    yield GatewayHandler()
    serving.install(previous)
    await runtime.aclose()


async def test_a_request_through_the_handler(handler: GatewayHandler) -> None:
    client = Exchange({"type": "http.request", "body": b"", "more_body": False})
    with respx.mock(using="httpx") as upstream:
        upstream.get("http://u.test/data").respond(json={"n": 1})
        scope = http_scope("GET", "/agg", [(b"x-request-id", b"rid-7")])
        await handler(scope, client.receive, client.send)
    assert client.status == 200 and orjson.loads(client.body) == {"d": {"n": 1}}
    assert client.headers[b"x-request-id"] == b"rid-7"
    assert client.sent[-1]["more_body"] is False


@pytest.mark.parametrize("chunks", [1, 8])
async def test_a_body_over_the_limit_is_refused_as_it_arrives(
    handler: GatewayHandler, chunks: int
) -> None:
    """Without a Content-Length, the body passes the route's 1 KiB while it
    streams in: 413 once it does, the rest never read, and the connection is
    to be closed."""
    piece = b"x" * (2048 // chunks)
    messages = [{"type": "http.request", "body": piece, "more_body": True} for _ in range(chunks)]
    messages.append({"type": "http.request", "body": b"never read", "more_body": False})
    client = Exchange(*messages)
    await handler(http_scope("POST", "/p/upload"), client.receive, client.send)
    assert client.status == 413
    assert client.headers[b"connection"] == b"close"
    assert client.headers[b"content-type"] == b"application/problem+json"
    assert orjson.loads(client.body)["status"] == 413
    assert client.incoming[-1]["body"] == b"never read"


async def test_a_declared_length_over_the_limit_is_refused_before_reading(
    handler: GatewayHandler,
) -> None:
    client = Exchange({"type": "http.request", "body": b"x" * 10, "more_body": True})
    await handler(
        http_scope("POST", "/p/upload", [(b"content-length", b"5000")]), client.receive, client.send
    )
    assert client.status == 413
    assert len(client.incoming) == 1  # nothing was read


async def test_a_client_leaving_cancels_the_upstream_call(handler: GatewayHandler) -> None:
    called, cancelled = asyncio.Event(), asyncio.Event()

    async def slow(request: httpx.Request) -> httpx.Response:
        called.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return httpx.Response(200, json={})

    client = Exchange({"type": "http.request", "body": b"", "more_body": False})
    # (respx counts a call only once it has answered: this one never does)
    with respx.mock(using="httpx", assert_all_called=False) as upstream:
        upstream.get("http://u.test/data").mock(side_effect=slow)
        task = asyncio.create_task(handler(http_scope("GET", "/agg"), client.receive, client.send))
        await asyncio.wait_for(called.wait(), 5)
        client.gone.set()  # the client disconnects
        await asyncio.wait_for(task, 5)  # returns at once, no traceback, nothing sent
    assert cancelled.is_set() and client.sent == []


async def test_an_undecodable_request_is_a_400_problem(handler: GatewayHandler) -> None:
    client = Exchange({"type": "http.request", "body": b"", "more_body": False})
    scope = http_scope("GET", "/agg")
    scope["query_string"] = b"a=\xff\xfe"  # not UTF-8: Django's request cannot be built
    await handler(scope, client.receive, client.send)
    assert client.status == 400
    assert client.headers[b"content-type"] == b"application/problem+json"
    assert client.headers[b"connection"] == b"close"
    assert orjson.loads(client.body)["request_id"] == client.headers[b"x-request-id"].decode()


# --- no reference cycles: a request's objects die with it ---------------------------
NOOP = "gateway.hooks.testing:noop"


async def _upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        await read_request(reader)
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n{"n": 1}')


@pytest.mark.parametrize(
    "path", ["/agg", "/hooked", "/p/x", "/p-hooked/x", "/down", "/p-down/x", "/none"]
)
async def test_a_request_leaves_no_reference_cycles(path: str, dead_port: int) -> None:
    """A cycle per request (a watcher task and its owner, an exception whose
    traceback holds the frame that keeps it) leaves every object the request
    made to the collector; under load that cost 20% CPU per request. Every
    path, the failing ones included, frees its objects by reference counting."""
    async with RawServer(_upstream) as port:
        routes = f"""
            version: 1
            upstreams:
              u: {{url: "http://127.0.0.1:{port}"}}
              dead: {{url: "http://127.0.0.1:{dead_port}"}}
            routes:
              - {{name: agg, path: /agg, backends: [{{upstream: u, path: /data, key: d}}]}}
              - name: hooked
                path: /hooked
                hooks: {{request: ['{NOOP}'], backend: ['{NOOP}'], response: ['{NOOP}']}}
                backends: [{{upstream: u, path: /data, key: d}}]
              - {{name: pass, path: "/p/{{rest:path}}", proxy: {{upstream: u, path: "/{{rest}}"}}}}
              - name: p-hooked
                path: "/p-hooked/{{rest:path}}"
                hooks: {{request: ['{NOOP}']}}
                proxy: {{upstream: u, path: "/{{rest}}"}}
              - {{name: down, path: /down, backends: [{{upstream: dead, path: /data}}]}}
              - {{name: pdown, path: "/p-down/{{rest:path}}", proxy: {{upstream: dead, path: /}}}}
        """
        previous = serving.current()
        runtime = Runtime(redis_url="", failure_mode="open")
        serving.install(build_gateway(table(routes), runtime))
        handler = GatewayHandler()

        async def one() -> int:
            client = Exchange({"type": "http.request", "body": b"", "more_body": False})
            await handler(http_scope("GET", path), client.receive, client.send)
            return client.status

        try:
            statuses = {await one() for _ in range(5)}  # warm: pools, caches, breakers
            gc.collect()
            gc.disable()
            try:
                for _ in range(20):
                    statuses.add(await one())
                found = gc.collect()
            finally:
                gc.enable()
        finally:
            serving.install(previous)
            await runtime.aclose()
    expected = {"/agg": 200, "/hooked": 200, "/p/x": 200, "/p-hooked/x": 200, "/none": 404}
    assert statuses == {expected.get(path, 502)}
    assert found == 0
