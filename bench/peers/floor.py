"""Reference floor for make bench: the minimal hand-written Django async view
calling aiohttp directly (three upstreams, asyncio.gather), on Django's stock
ASGI handler. The gateway must spend at most 0.6x its CPU per request.

    PEER_UPSTREAMS=http://127.0.0.1:9101,http://...  uvicorn bench.peers.floor:application
"""

from __future__ import annotations

import asyncio

import aiohttp
from django.http import JsonResponse
from django.urls import path

from bench.peers import UPSTREAMS, configure_django

_session: aiohttp.ClientSession | None = None


def session() -> aiohttp.ClientSession:
    global _session
    if _session is None:
        _session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=512))
    return _session


async def fetch(url: str) -> object:
    async with session().get(url) as response:
        return await response.json()


async def aggregate(request: object, delay: int = 0) -> JsonResponse:
    prefix = f"/delay/{delay}" if delay else ""
    bodies = await asyncio.gather(
        *(fetch(f"{base}{prefix}/users/{i}") for i, base in enumerate(UPSTREAMS, 1))
    )
    return JsonResponse(dict(zip("abc", bodies, strict=False)))


async def aggregate_slow(request: object) -> JsonResponse:
    return await aggregate(request, delay=50)


configure_django(__name__)
urlpatterns = [path("fast3", aggregate), path("slow3", aggregate_slow)]

from django.core.asgi import get_asgi_application  # noqa: E402

application = get_asgi_application()
