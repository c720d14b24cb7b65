"""The gateway with a comparison transport under httpx's API, for `make bench`:

BENCH_TRANSPORT=aiohttp uvicorn bench.transports.gateway:application
"""

from __future__ import annotations

import os

from bench.transports import FACTORIES
from gateway.upstream import clients

clients.transport_factory = FACTORIES[os.environ["BENCH_TRANSPORT"]]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from config.asgi import application  # noqa: E402

__all__ = ["application"]
