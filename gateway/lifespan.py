"""The ASGI application uvicorn runs: lifespan events, then HTTP to the handler.

Django's ASGIHandler refuses the `lifespan` scope; this wrapper answers it.
Shutdown marks the process draining (/readyz turns 503) and closes the shared
resources (upstream clients, Redis).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from . import registry
from .handler import GatewayHandler
from .services import Services

__all__ = ["GatewayApplication"]

logger = logging.getLogger("gateway")


class GatewayApplication:
    def __init__(self, handler: GatewayHandler, services: Services) -> None:
        self.handler = handler
        self.services = services

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            await self.handler.handle(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1003})

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
        registry.lifecycle.draining = False
        gateway = registry.current()
        routes = len(gateway.table.routes) if gateway else 0
        logger.info("gateway ready: %d routes", routes)

    async def shutdown(self) -> None:
        registry.lifecycle.draining = True
        await self.services.aclose()
