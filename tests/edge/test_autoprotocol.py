"""How HTTP2=on takes over uvicorn's protocol (gateway/edge/autoprotocol.py)."""

from __future__ import annotations

import ssl
from pathlib import Path
from types import SimpleNamespace

import uvicorn

from gateway.edge.autoprotocol import AutoProtocol, serve_http2
from gateway.edge.h2server import H2Protocol
from tests.certs import Authority


def test_a_config_not_yet_loaded_resolves_to_the_auto_protocol() -> None:
    config = uvicorn.Config("config.asgi:application", http="httptools", http2=True)
    serve_http2(config, limits=(3.0, 100, 200))
    assert config.http is AutoProtocol and config.http2 is False
    assert H2Protocol.limits == (3.0, 100, 200)


def test_a_loaded_tls_context_offers_h2_by_alpn(tmp_path: Path) -> None:
    authority = Authority(tmp_path)
    issued = authority.issue("localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(issued.cert, issued.key)
    offered: list[list[str]] = []
    context.set_alpn_protocols = offered.append  # type: ignore[method-assign,assignment]
    config = SimpleNamespace(ssl=context, http="auto", http2=False, http_protocol_class=None)
    serve_http2(config, limits=(10.0, 8192, 65536))
    assert config.http_protocol_class is AutoProtocol
    assert offered == [["h2", "http/1.1"]]
