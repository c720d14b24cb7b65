"""What the gateway arranges in uvicorn itself, however uvicorn was started
(`uvicorn config.asgi:application`, the Dockerfile, `make run`, flags or
none). uvicorn imports the application inside `Config.load()`, after it has
chosen its HTTP protocol and before it wraps the application, so boot.py can
still look at (and adjust) what it chose:

- `running_config()`: the uvicorn `Config` that is importing the gateway,
  found on the call stack (None when something else imports it: a test,
  `manage.py`). `uvicorn.run` imports the app once before `load()` (to fail
  early), so the protocol is read from what the config was given, as
  `load()` will resolve it;
- `unguarded_protocol(config)`: why uvicorn's chosen protocol cannot serve
  the gateway, if it cannot. SPEC 3.10's client limits (request line, header
  block, header deadline) are installed on the httptools protocol
  (edge/protocol.py); h11 enforces none of them, so `--http h11` is refused
  in one line rather than silently serving without them;
- `quiet_server(config)`: no `server: uvicorn` header on answers (a gateway
  does not advertise what runs it) and no uvicorn access log (the gateway
  writes its own, one line per request, credentials masked): plain
  `uvicorn config.asgi:application` behaves as `make run` does;
- `keep_the_tcp_peer()`: uvicorn's X-Forwarded-For rewriting off
  (TRUSTED_PROXIES alone decides client addresses);
- `no_message_logger()`: at `--log-level trace` uvicorn wraps the app in a
  logger that prints every ASGI scope, query string included, before the
  gateway has taken credentials out of it; it is replaced by nothing;

These lean on uvicorn's internals (`uvicorn.config`'s module names and
`Config.http_protocol_class`), pinned in pyproject.toml;
tests/edge/test_server.py fails on a version that moved them.
"""

from __future__ import annotations

import logging
import sys
from types import FrameType
from typing import Any

__all__ = [
    "chosen_protocol",
    "keep_the_tcp_peer",
    "no_message_logger",
    "quiet_server",
    "running_config",
    "unguarded_protocol",
]

logger = logging.getLogger("gateway")


def running_config() -> Any | None:
    """The uvicorn Config whose `load()` is importing the application."""
    uvicorn_config = sys.modules.get("uvicorn.config")
    if uvicorn_config is None:
        return None
    config_class = uvicorn_config.Config
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        candidate = frame.f_locals.get("self")
        if isinstance(candidate, config_class):
            return candidate
        frame = frame.f_back
    return None


def chosen_protocol(config: Any) -> Any:
    """The HTTP protocol class `config` serves with (or will, once loaded)."""
    from uvicorn.config import HTTP_PROTOCOLS
    from uvicorn.importer import import_from_string

    if getattr(config, "http_protocol_class", None) is not None:
        return config.http_protocol_class
    if getattr(config, "http2", False):
        return import_from_string("uvicorn.protocols.http.auto_zttp_impl:AutoZttpProtocol")
    if isinstance(config.http, str):
        return import_from_string(HTTP_PROTOCOLS.get(config.http, config.http))
    return config.http


def unguarded_protocol(config: Any) -> str | None:
    """Why the HTTP protocol `config` chose cannot serve the gateway, or None."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    protocol = chosen_protocol(config)
    if protocol is HttpToolsProtocol:
        return None
    name = getattr(protocol, "__name__", repr(protocol))
    return (
        f"uvicorn's {name} (--http {config.http}) cannot enforce MAX_REQUEST_LINE,"
        " MAX_REQUEST_HEADERS and CLIENT_HEADER_TIMEOUT; start with --http httptools"
        " (or without --http); for HTTP/2 set HTTP2=on"
    )


def quiet_server(config: Any) -> None:
    """No Server header, no uvicorn access log, whatever flags were given."""
    config.server_header = False
    if hasattr(config, "encoded_headers"):  # load() made them before the import
        config.encoded_headers = [(n, v) for n, v in config.encoded_headers if n != b"server"]
    config.access_log = False
    access = logging.getLogger("uvicorn.access")
    access.handlers = []
    access.propagate = False


def _app_unchanged(app: object, *args: object, **kwargs: object) -> object:
    """Stands in for a uvicorn middleware class: returns the app untouched."""
    return app


def keep_the_tcp_peer() -> bool:
    """uvicorn rewrites scope["client"] from X-Forwarded-For for peers in
    FORWARDED_ALLOW_IPS (loopback by default) unless started with
    --no-proxy-headers; a local client could then claim any address. SPEC 3.4
    makes TRUSTED_PROXIES the one place client addresses are decided, so the
    gateway switches uvicorn's rewriting off however it was started. uvicorn
    wraps the app after importing it, so replacing the class now is enough;
    tests/integration/test_process.py starts uvicorn without the flag to prove it."""
    return _replace("ProxyHeadersMiddleware")


def no_message_logger() -> bool:
    """uvicorn's trace-level ASGI message logger prints each scope (the raw
    query string, credentials and all) before the gateway has seen it: the
    gateway never lets it wrap the application. Its own access log and
    uvicorn's other trace lines carry no credential."""
    replaced = _replace("MessageLoggerMiddleware")
    if replaced and logging.getLogger("uvicorn.asgi").isEnabledFor(5):  # uvicorn's TRACE
        logger.info("uvicorn's trace-level ASGI message log is off: it would print credentials")
    return replaced


def _replace(middleware: str) -> bool:
    uvicorn_config = sys.modules.get("uvicorn.config")
    if uvicorn_config is None or not hasattr(uvicorn_config, middleware):
        return False
    setattr(uvicorn_config, middleware, _app_unchanged)
    return True
