"""Start-up: settings, routes file, shared clients, the ASGI application.

Called while uvicorn imports `config.asgi`, before it binds its socket. A
problem here is printed on stderr as plain lines (never a traceback) and the
process exits with status 1, so a bad deploy fails fast instead of listening.
"""

from __future__ import annotations

import sys
from typing import NoReturn

__all__ = ["build_application"]


def _fail(lines: list[str]) -> NoReturn:
    for line in lines:
        sys.stderr.write(line + "\n")
    sys.stderr.flush()
    raise SystemExit(1)


def build_application() -> object:
    import django
    from django.core.exceptions import ImproperlyConfigured

    try:
        django.setup(set_prefix=False)
    except ImproperlyConfigured as exc:
        _fail([f"gateway: invalid setting: {exc}"])

    from django.conf import settings

    from . import registry
    from .config import RoutesFileError, load_route_table
    from .handler import GatewayHandler
    from .lifespan import GatewayApplication
    from .upstream import UpstreamClients

    try:
        table = load_route_table(settings.ROUTES_FILE)
    except RoutesFileError as exc:
        _fail([*exc.lines(), f"gateway: not starting: {settings.ROUTES_FILE} is invalid"])
    clients = UpstreamClients("httpx" if settings.UPSTREAM_TRANSPORT == "httpx" else "aiohttp")
    registry.install(registry.build_gateway(table, clients))
    return GatewayApplication(GatewayHandler(), clients)
