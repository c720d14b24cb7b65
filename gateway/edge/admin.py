"""The admin listener (SPEC 3.14): a second listener in the same process, at
ADMIN_ADDR (default 127.0.0.1:9901, `off` for none), for operators only.

    GET /healthz   200 while the process runs (never needs the token)
    GET /readyz    as on the client port (never needs the token)
    GET /metrics   Prometheus text (the client port answers it 404)
    GET /config    the loaded routes as JSON, every secret "***"
    GET /          the dashboard: one self-contained page (observe/dashboard.py)
    GET /events    its live data: one SSE stream, an update every second
    GET /validation, /consumers ...   what the policies show (registry.PANELS)

Only requests whose Host is the listener's own address (the one the
connection came in on), `localhost`, or a name in ADMIN_HOSTS are answered;
anything else is 421. A page on another site whose name a DNS-rebinding
attacker points at 127.0.0.1 sends its own name as the Host: it reads
nothing, token or not.

With ADMIN_TOKEN set, every other path needs `Authorization: Bearer <token>`
(401 otherwise). A browser asking for `/` without it gets the page with the
401: the page asks for the token once, keeps it in the tab's sessionStorage
and sends it with its requests for /events, which is where the data is.

The socket is bound when the process boots, so that an address in use stops
the gateway before it listens (one line, no traceback); it is served by
uvicorn's own HTTP protocol, with the same limits as the client port, from
the lifespan's startup.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import socket
from typing import Any

import orjson
from django.http.request import split_domain_port, validate_host
from uvicorn.config import Config
from uvicorn.server import ServerState

from gateway import serving
from gateway.errors import problem_body
from gateway.lifecycle import lifecycle
from gateway.observe import metrics
from gateway.observe.configview import config_document
from gateway.observe.dashboard import FEED, dashboard_page
from gateway.observe.readiness import PROBES, readiness
from gateway.registry import PANELS

__all__ = ["AdminApp", "AdminListener", "bind_admin"]

_JSON = [(b"content-type", b"application/json")]
_PROBLEM = [(b"content-type", b"application/problem+json")]


def bind_admin(host: str, port: int) -> socket.socket:
    """The listening socket; OSError (address in use, not ours) for the caller to report."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP_NODELAY on accept
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class AdminApp:
    """The admin paths, as a plain ASGI app (no Django: nothing here is routed)."""

    def __init__(self, token: str, hosts: tuple[str, ...] = ()) -> None:
        self.token = token.encode()
        self.hosts = ["localhost", *hosts]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path, method = scope.get("path", ""), scope.get("method", "GET")
        if not self._host_allowed(scope):
            await _problem(
                send,
                421,
                "this listener answers only its own address, localhost or a name in ADMIN_HOSTS",
            )
            return
        if method not in ("GET", "HEAD"):
            await _problem(send, 405, "the admin listener only answers GET", [(b"allow", b"GET")])
            return
        if self.token and path not in PROBES and not self._authorized(scope):
            if path == "/" and _wants_html(scope):  # the page asks for the token itself
                await _page(send, 401)
                return
            await _problem(
                send, 401, "this needs the admin token", [(b"www-authenticate", b"Bearer")]
            )
            return
        if path == "/healthz":
            await _answer(send, 200, _JSON, b'{"status":"ok"}')
        elif path == "/readyz":
            status, detail = await readiness()
            if status == 200:
                await _answer(send, 200, _JSON, b'{"status":"ready"}')
            else:
                await _problem(send, status, detail)
        elif path == "/metrics":
            await _answer(
                send,
                200,
                [(b"content-type", metrics.CONTENT_TYPE_LATEST.encode())],
                metrics.render(),
            )
        elif path == "/":
            await _page(send, 200)
        elif path == "/events":
            if method == "HEAD":  # what a GET would start with, and no stream
                await _answer(send, 200, [(b"content-type", b"text/event-stream")], b"")
            else:
                await _events(receive, send)
        elif path == "/config":
            gateway = serving.current()
            if gateway is None:
                await _problem(send, 503, "no routes are loaded")
                return
            targets = {}
            for name, upstream in gateway.table.upstreams.items():
                if (guard := gateway.runtime.guard(upstream)) is not None:
                    targets[name] = [s.describe() for s in guard.balancer.states]
            document = config_document(gateway.table, targets)
            body = orjson.dumps(document, option=orjson.OPT_INDENT_2)
            await _answer(send, 200, _JSON, body)
        elif (panel := PANELS.get(path)) is not None:  # what a policy shows: /consumers...
            body = orjson.dumps(panel.document(None), option=orjson.OPT_INDENT_2)
            await _answer(send, 200, _JSON, body)
        else:
            await _problem(send, 404, "no such admin path")

    def _host_allowed(self, scope: dict[str, Any]) -> bool:
        host = next((v for n, v in scope["headers"] if n == b"host"), b"").decode("latin-1")
        domain, _ = split_domain_port(host.lower())
        if not domain:
            return False
        server = scope.get("server")
        if server and domain.strip("[]") == str(server[0]).lower():
            return True
        return validate_host(domain, self.hosts)

    def _authorized(self, scope: dict[str, Any]) -> bool:
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, token = value.partition(b" ")
                return scheme.lower() == b"bearer" and hmac.compare_digest(
                    token.strip(), self.token
                )
        return False


def _wants_html(scope: dict[str, Any]) -> bool:
    for name, value in scope["headers"]:
        if name == b"accept":
            return b"text/html" in value
    return False


async def _page(send: Any, status: int) -> None:
    body, policy = dashboard_page()
    headers = [
        (b"content-type", b"text/html; charset=utf-8"),
        (b"content-security-policy", policy),
        (b"cache-control", b"no-store"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
    ]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await _answer(send, status, headers, body)


async def _events(receive: Any, send: Any) -> None:
    """The dashboard's stream, until the client goes, lags, or the process drains."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/event-stream"),
                (b"cache-control", b"no-cache"),
                (b"x-accel-buffering", b"no"),
            ],
        }
    )
    stream = FEED.open()

    def end() -> None:
        FEED.close(stream)

    lifecycle.open_ended.add(end)
    gone = asyncio.ensure_future(_disconnected(receive))
    try:
        while True:
            update = asyncio.ensure_future(stream.get())
            await asyncio.wait({update, gone}, return_when=asyncio.FIRST_COMPLETED)
            if not update.done():
                update.cancel()
                return  # the client went away
            chunk = update.result()
            if chunk is None:
                break
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    finally:
        gone.cancel()
        FEED.close(stream)
        lifecycle.open_ended.discard(end)


async def _disconnected(receive: Any) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _answer(send: Any, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _problem(
    send: Any, status: int, detail: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = problem_body(status, detail, request_id="admin")
    await _answer(send, status, [*_PROBLEM, *(extra or [])], body)


class AdminListener:
    """Serves AdminApp on a socket bound at boot, with uvicorn's HTTP protocol."""

    def __init__(self, sock: socket.socket, app: AdminApp) -> None:
        self.sock = sock
        self.config = Config(
            app=app,
            lifespan="off",
            log_config=None,
            # True leaves uvicorn's logging as the main server set it (False
            # would remove the access log's handlers for every listener).
            access_log=True,
            server_header=False,
            proxy_headers=False,
            ws="none",
            http="httptools",
        )
        self._server: asyncio.AbstractServer | None = None

    @property
    def address(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"{host}:{port}"

    async def start(self) -> None:
        config = self.config
        if not config.loaded:
            config.load()
        state = ServerState()
        protocol_class: Any = config.http_protocol_class  # uvicorn's, as its own server builds it
        protocol = functools.partial(
            protocol_class, config=config, server_state=state, app_state={}
        )
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(protocol, sock=self.sock)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
