"""Private internals of uvicorn, Django and httpx the gateway relies on, and
the versions they were checked against. A version outside CHECKED fails here,
loudly, before anything else can misbehave: read the named modules against
the new version, then add it.

    uvicorn  edge/protocol.py (HttpToolsProtocol's data_received, scope, cycle,
             url, parser), edge/server.py (uvicorn.config, the protocol
             classes), asgi.py (the cycle's transport, flow, disconnected),
             edge/admin.py (Config, ServerState, http_protocol_class)
    Django   edge/handler.py (BaseHandler._middleware_chain, a response's
             _resource_closers, ASGIHandler's methods it overrides)
    httpx    upstream/requests.py (Headers._list, AsyncClient._transport_for_url,
             URL._uri_reference), upstream/h1/transport.py (Headers._list)
"""

from __future__ import annotations

import inspect
from importlib.metadata import version

import django
import httpx
import pytest
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.base import BaseHandler
from django.http import HttpResponse
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

# The minor versions whose internals the modules above were read against.
CHECKED = {"uvicorn": ("0.54",), "django": ("6.1",), "httpx": ("0.28",)}


@pytest.mark.parametrize("package", sorted(CHECKED))
def test_the_installed_versions_are_the_ones_checked(package: str) -> None:
    installed = ".".join(version(package).split(".")[:2])
    assert installed in CHECKED[package], (
        f"{package} {version(package)} is installed; the gateway reads its internals and was "
        f"checked against {', '.join(CHECKED[package])} only (see this module's docstring)"
    )


def test_uvicorns_httptools_protocol_has_what_edge_protocol_patches() -> None:
    source = inspect.getsource(HttpToolsProtocol)
    for name in ("def data_received", "def connection_made", "def connection_lost"):
        assert name in source, name
    for name in ("self.scope", "self.cycle", "self.parser", "self.transport", "self.url"):
        assert name in source, name
    cycle = inspect.getsource(RequestResponseCycle.__init__)
    for name in ("self.transport", "self.flow", "self.disconnected"):
        assert name in cycle, name
    assert hasattr(Config, "http_protocol_class") or "http_protocol_class" in inspect.getsource(
        Config.load
    )


def test_djangos_handler_has_what_edge_handler_uses() -> None:
    assert django.VERSION[:2] == (6, 1)
    assert "self._middleware_chain" in inspect.getsource(BaseHandler.load_middleware)
    assert isinstance(HttpResponse()._resource_closers, list)  # type: ignore[attr-defined]
    for name in ("handle", "send_response", "get_response_async", "make_view_atomic"):
        assert hasattr(ASGIHandler, name), name


def test_httpx_has_what_the_upstream_requests_use() -> None:
    headers = httpx.Headers([("A", "1")])
    assert headers._list == [(b"A", b"a", b"1")]  # (as sent, lower case, value)
    assert callable(httpx.AsyncClient()._transport_for_url)
    assert hasattr(httpx.URL("http://x/")._uri_reference, "copy_with")
