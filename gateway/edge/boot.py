"""Start-up: settings, routes file, shared clients, the ASGI application.

Called while uvicorn imports `config.asgi`, before it binds its socket. A
problem here is printed on stderr as plain lines (never a traceback) and the
process exits with status 1, so a bad deploy fails fast instead of listening.
"""

from __future__ import annotations

import logging
import sys
from typing import NoReturn

__all__ = ["build_application"]


def _fail(lines: list[str]) -> NoReturn:
    for line in lines:
        sys.stderr.write(line + "\n")
    sys.stderr.flush()
    raise SystemExit(1)


def _mask_server_logs() -> None:
    """uvicorn logs request targets as sent (its access log, its WebSocket
    lines), whatever flags it was started with: credential query parameters
    are masked in them (gateway/credentials.py)."""
    import logging

    from gateway import serving
    from gateway.observe.logs import MaskQueryCredentials

    def names() -> frozenset[str]:
        gateway = serving.current()
        return gateway.secret_params if gateway is not None else frozenset()

    for name in ("uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, MaskQueryCredentials) for f in logger.filters):
            logger.addFilter(MaskQueryCredentials(names))


def _websocket_max_size() -> int:
    from gateway import serving
    from gateway.assembly import NO_WEBSOCKETS

    gateway = serving.current()
    return gateway.websocket_max_size if gateway is not None else NO_WEBSOCKETS


def _tune_gc() -> None:
    """Garbage collection for a server: move everything made while starting
    into the permanent generation (collections no longer walk it), and let the
    young generation grow larger between collections. Requests make many
    short-lived objects; most die young either way."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)


def build_application() -> object:
    import django
    from django.core.exceptions import ImproperlyConfigured

    try:
        django.setup(set_prefix=False)
    except ImproperlyConfigured as exc:  # config/env.py: "setting NAME: message"
        _fail([str(exc) if str(exc).startswith("setting ") else f"setting: {exc}"])

    from django.conf import settings

    from gateway import serving
    from gateway.assembly import build_gateway
    from gateway.edge import allocator
    from gateway.edge.handler import GatewayHandler
    from gateway.edge.lifespan import GatewayApplication
    from gateway.edge.protocol import guard_protocol
    from gateway.edge.reload import file_digest
    from gateway.edge.server import (
        keep_the_tcp_peer,
        no_message_logger,
        quiet_server,
        running_config,
        unguarded_protocol,
    )
    from gateway.edge.wslimits import limit_websocket_messages
    from gateway.observe import metrics
    from gateway.observe.live import LIVE
    from gateway.registry import parse_routes_file
    from gateway.routes import RoutesFileError, read_routes_file
    from gateway.runtime import Runtime

    server = running_config()
    if server is not None:
        if not settings.HTTP2 and (reason := unguarded_protocol(server)) is not None:
            _fail([f"gateway: not starting: {reason}"])
        quiet_server(server)
    try:
        data = read_routes_file(settings.ROUTES_FILE)
        table = parse_routes_file(data, str(settings.ROUTES_FILE))
    except RoutesFileError as exc:
        _fail([*exc.lines(), f"gateway: not starting: {settings.ROUTES_FILE} is invalid"])
    runtime = Runtime(
        redis_url=settings.REDIS_URL,
        failure_mode=settings.RATE_LIMIT_FAILURE_MODE,
        memory_budget=settings.MEMORY_BUDGET,
    )
    metrics.set_enabled(settings.METRICS)  # before the stacks are built: they take timers
    serving.install(build_gateway(table, runtime))
    LIVE.loaded(str(settings.ROUTES_FILE), file_digest(data), len(table.routes), reload=False)
    keep_the_tcp_peer()
    no_message_logger()
    _mask_server_logs()
    allocator.tune()
    _tune_gc()
    guard_protocol(
        header_timeout=settings.CLIENT_HEADER_TIMEOUT,
        max_line=settings.MAX_REQUEST_LINE,
        max_headers=settings.MAX_REQUEST_HEADERS,
    )
    if settings.HTTP2 and server is not None:
        from gateway.edge.autoprotocol import serve_http2

        serve_http2(
            server,
            limits=(
                settings.CLIENT_HEADER_TIMEOUT,
                settings.MAX_REQUEST_LINE,
                settings.MAX_REQUEST_HEADERS,
            ),
            trusted=settings.TRUSTED_PROXIES,
        )
    limit_websocket_messages(_websocket_max_size)
    exporter = None
    if settings.TRACE_EXPORT:  # the SDK is imported only then
        from gateway.observe.export import start_export
        from gateway.observe.trace import install_sink

        try:
            exporter = start_export()
        except (ValueError, RuntimeError) as exc:
            _fail([f"setting OTEL_EXPORTER_OTLP_ENDPOINT: {exc}"])
        install_sink(exporter)
    admin = None
    if settings.ADMIN_ADDR is not None:
        from gateway.edge.admin import AdminApp, AdminListener, bind_admin

        host, port = settings.ADMIN_ADDR
        try:
            app = AdminApp(settings.ADMIN_TOKEN, settings.ADMIN_HOSTS)
            admin = AdminListener(bind_admin(host, port), app)
        except OSError as exc:
            problem = f"cannot listen on {host}:{port}: {exc.strerror or exc}"
            if settings.ADMIN_ADDR_CHOSEN:
                _fail([f"setting ADMIN_ADDR: {problem}"])
            logging.getLogger("gateway").error(
                "admin listener: %s; serving without it (/metrics, /config) on this"
                " process: set ADMIN_ADDR to a free address, or off",
                problem,
            )
    return GatewayApplication(GatewayHandler(), runtime, file_digest(data), admin, exporter)
