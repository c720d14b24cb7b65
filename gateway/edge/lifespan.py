"""The ASGI application uvicorn runs: lifespan events, HTTP to the handler,
WebSocket handshakes to the WebSocket entry.

Django's ASGIHandler refuses the `lifespan` scope; this wrapper answers it.
Shutdown marks the process draining (/readyz turns 503) and closes the shared
resources (upstream clients, Redis).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from django.conf import settings

from gateway import serving
from gateway.edge import allocator
from gateway.edge.handler import GatewayHandler
from gateway.edge.handshake import WebSocketEntry
from gateway.edge.reload import Reloader
from gateway.lifecycle import lifecycle
from gateway.observe.dashboard import FEED
from gateway.runtime import Runtime

if TYPE_CHECKING:
    from gateway.edge.admin import AdminListener
    from gateway.observe.export import Exporter

__all__ = ["GatewayApplication"]

logger = logging.getLogger("gateway")


class GatewayApplication:
    def __init__(
        self,
        handler: GatewayHandler,
        runtime: Runtime,
        routes_digest: bytes,
        admin: AdminListener | None = None,
        exporter: Exporter | None = None,
    ) -> None:
        self.admin = admin
        self.exporter = exporter
        self.handler = handler
        self.websockets = WebSocketEntry(handler.access_log)
        self.runtime = runtime
        self.routes_digest = routes_digest  # of the routes file the serving config came from
        self._background: list[asyncio.Task[None]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            await self.handler.handle(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await self.websockets.handle(scope, receive, send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    sys.stderr.write(f"gateway: start-up failed: {exc}\n")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def startup(self) -> None:
        lifecycle.draining = False
        _drain_on_signals()
        if settings.RELOAD:
            reloader = Reloader(Path(settings.ROUTES_FILE), self.runtime, self.routes_digest)
            self._background.append(asyncio.create_task(reloader.run()))
        self._background.append(asyncio.create_task(self._housekeeping()))
        self.runtime.health.start()
        if self.admin is not None:
            await self.admin.start()
        gateway = serving.current()
        routes = len(gateway.table.routes) if gateway else 0
        logger.info(
            "gateway ready: %d routes, reload %s, admin listener %s",
            routes,
            "on" if settings.RELOAD else "off",
            self.admin.address if self.admin is not None else "off",
        )

    async def _housekeeping(self) -> None:
        """Once a second (on the wall clock's second), off the request path: the
        dashboard's second is folded into its history (observe/dashboard.py),
        rate-limit buckets that have refilled are forgotten even when no request
        comes to do it, and free heap memory goes back to the system
        (gateway/edge/allocator.py)."""
        while True:
            await asyncio.sleep(1.005 - time.time() % 1.0)  # just past the second
            try:
                FEED.tick()  # the dashboard's second
            except Exception:  # never the end of housekeeping
                logger.exception("dashboard tick failed")
            self.runtime.limiter.housekeep()
            allocator.trim()

    async def shutdown(self) -> None:
        lifecycle.draining = True
        self.handler.access_log.flush()
        for task in self._background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._background.clear()
        if self.admin is not None:
            await self.admin.close()
        await self.runtime.aclose()
        if self.exporter is not None:  # a last flush, bounded, off the loop
            await asyncio.to_thread(self.exporter.stop)


def _drain_on_signals() -> None:
    """/readyz must turn 503 the moment SIGTERM arrives, while uvicorn is still
    finishing in-flight requests, and connections with no natural end (event
    streams, WebSockets) are ended so that the process can exit within its
    grace period. uvicorn installs its own handlers before the lifespan starts;
    ours marks the process draining, then hands over to them (uvicorn restores
    the originals when it exits)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)
        if not callable(previous):
            continue

        def handler(signum: int, frame: FrameType | None, previous: Any = previous) -> None:
            lifecycle.draining = True
            loop.call_soon_threadsafe(lifecycle.drain)
            previous(signum, frame)

        signal.signal(sig, handler)
