"""Start-up (gateway/edge/boot.py): uvicorn's proxy-header rewriting is switched off."""

from __future__ import annotations

import uvicorn.config

from gateway.edge.boot import _keep_the_tcp_peer, _no_proxy_headers


def test_uvicorn_proxy_headers_middleware_is_replaced() -> None:
    original = uvicorn.config.ProxyHeadersMiddleware
    try:
        assert _keep_the_tcp_peer() is True
        app = object()
        assert uvicorn.config.ProxyHeadersMiddleware(app, trusted_hosts="*") is app
        assert uvicorn.config.ProxyHeadersMiddleware is _no_proxy_headers
    finally:
        uvicorn.config.ProxyHeadersMiddleware = original  # type: ignore[misc]
