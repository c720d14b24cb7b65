"""HTTP/1.1 and HTTP/2 on one port (HTTP2=on).

Each new connection is handed to one of two protocols:
- over TLS, by what ALPN chose (`h2`, else HTTP/1.1);
- in cleartext, by its first bytes: the HTTP/2 preface (h2c with prior
  knowledge) or anything else (HTTP/1.1). HTTP/1.1's `Upgrade: h2c` is not
  offered: browsers never use it and gRPC clients use prior knowledge.

HTTP/1.1 keeps uvicorn's httptools protocol with the gateway's limits
(gateway/edge/protocol.py), so it is served exactly as with HTTP2=off;
HTTP/2 goes to gateway/edge/h2server.py, unless the address was cut off for
an attack moments ago (gateway/edge/h2limits.py, PENALTY): then it gets a
GOAWAY at once. A client that sends nothing, or only part of the preface, is
closed after CLIENT_HEADER_TIMEOUT.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any, ClassVar

from hyperframe.frame import GoAwayFrame, SettingsFrame
from uvicorn.protocols.utils import is_ssl

from gateway.edge.address import Networks
from gateway.edge.h2limits import PENALTY
from gateway.edge.h2server import H2Protocol

__all__ = ["PREFACE", "AutoProtocol", "serve_http2"]

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
# An empty SETTINGS (the server's preface), then GOAWAY ENHANCE_YOUR_CALM.
REFUSED = SettingsFrame(0).serialize() + GoAwayFrame(0, error_code=0xB).serialize()


def _address(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    return str(peer[0]) if peer else ""


class AutoProtocol(asyncio.Protocol):
    alpn_protocols: ClassVar[list[str]] = ["h2", "http/1.1"]

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._args = {"config": config, "server_state": server_state, "app_state": app_state}
        self.loop = _loop or asyncio.get_event_loop()
        self._args["_loop"] = self.loop
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if is_ssl(transport):  # type: ignore[arg-type]
            ssl_object = transport.get_extra_info("ssl_object")
            alpn = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
            self._switch(http2=alpn == "h2")
            return
        self._timer = self.loop.call_later(H2Protocol.limits[0], transport.close)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) < len(PREFACE) and PREFACE.startswith(self.buffer):
            return  # perhaps the preface: wait for the rest
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._switch(http2=self.buffer.startswith(PREFACE), data=self.buffer)

    def _switch(self, *, http2: bool, data: bytes = b"") -> None:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        assert self.transport is not None
        if http2 and PENALTY.holds(_address(self.transport)):
            self.transport.write(REFUSED)  # cut off recently: nothing is made for it
            self.transport.close()
            return
        protocol: asyncio.Protocol = (H2Protocol if http2 else HttpToolsProtocol)(**self._args)
        self.transport.set_protocol(protocol)
        protocol.connection_made(self.transport)
        if data:
            protocol.data_received(data)


def serve_http2(config: Any, *, limits: tuple[float, int, int], trusted: Networks = ()) -> None:
    """Make the uvicorn `config` serve with AutoProtocol, whether it has
    loaded already (uvicorn imports the app inside `load()`) or will
    (`uvicorn.run` imports it once before): both the class it would resolve
    and the one it resolved are replaced, and ALPN offers `h2` on a TLS
    context it has made."""
    H2Protocol.limits = limits
    H2Protocol.trusted = trusted
    config.http = AutoProtocol
    config.http2 = False  # uvicorn's own switch would choose its zttp protocols
    config.http_protocol_class = AutoProtocol
    context = getattr(config, "ssl", None)
    if isinstance(context, ssl.SSLContext):
        context.set_alpn_protocols(AutoProtocol.alpn_protocols)
