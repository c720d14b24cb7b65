"""What the gateway arranges in uvicorn (gateway/edge/server.py), against the
pinned uvicorn: the internals it relies on are where it expects them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn.config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway.edge.server import (
    chosen_protocol,
    keep_the_tcp_peer,
    no_message_logger,
    running_config,
    unguarded_protocol,
)


@pytest.fixture
def restored() -> Iterator[None]:
    saved = {
        n: getattr(uvicorn.config, n) for n in ("ProxyHeadersMiddleware", "MessageLoggerMiddleware")
    }
    yield
    for name, value in saved.items():
        setattr(uvicorn.config, name, value)


@pytest.mark.usefixtures("restored")
@pytest.mark.parametrize(
    ("switch", "name"),
    [(keep_the_tcp_peer, "ProxyHeadersMiddleware"), (no_message_logger, "MessageLoggerMiddleware")],
)
def test_uvicorn_middleware_is_replaced_by_nothing(switch: Any, name: str) -> None:
    assert switch() is True
    app = object()
    assert getattr(uvicorn.config, name)(app, trusted_hosts="*") is app


def test_the_config_importing_the_app_is_found_on_the_stack() -> None:
    config = uvicorn.config.Config(app="config.asgi:application")

    def load(self: uvicorn.config.Config) -> object:  # as Config.load() calls the import
        return running_config()

    assert load(config) is config
    assert running_config() is None  # nothing is loading the gateway here


def test_only_the_httptools_protocol_is_accepted() -> None:
    config = uvicorn.config.Config(app="config.asgi:application", http="h11")
    assert chosen_protocol(config) is H11Protocol  # before load(), as uvicorn.run imports
    reason = unguarded_protocol(config)
    assert reason is not None and "--http h11" in reason
    config.http_protocol_class = HttpToolsProtocol  # after load()
    assert unguarded_protocol(config) is None
    auto = uvicorn.config.Config(app="config.asgi:application")
    assert chosen_protocol(auto) is HttpToolsProtocol  # auto: httptools, installed
    assert unguarded_protocol(auto) is None
