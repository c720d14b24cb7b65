"""gateway/asgi.py against the pinned uvicorn: the attributes it reads are
where it expects them (a uvicorn upgrade that moves them fails here)."""

from __future__ import annotations

import asyncio
import inspect
import socket
from types import SimpleNamespace
from typing import Any

from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from gateway.asgi import cut_connection, may_block


def test_uvicorn_still_has_what_the_gateway_reads() -> None:
    cycle = inspect.getsource(RequestResponseCycle.__init__)
    for name in ("self.transport", "self.flow", "self.disconnected"):
        assert name in cycle, name
    assert "write_paused" in inspect.getsource(FlowControl)
    websocket = inspect.getsource(WebSocketsSansIOProtocol)
    for name in ("self.writable", "self.transport", "self.disconnected"):
        assert name in websocket, name
    assert "await self.writable.wait()" in inspect.getsource(WebSocketsSansIOProtocol.send)


class _Server:
    def __init__(self, **attrs: Any) -> None:
        self.__dict__.update(attrs)
        self.disconnected = False

    async def send(self, message: dict[str, Any]) -> None:
        return None


async def test_may_block_reads_the_servers_flow_control() -> None:
    paused = _Server(flow=SimpleNamespace(write_paused=True))
    assert may_block(paused.send)
    assert not may_block(_Server(flow=SimpleNamespace(write_paused=False)).send)
    writable = asyncio.Event()
    websocket = _Server(writable=writable)
    assert may_block(websocket.send)
    writable.set()
    assert not may_block(websocket.send)

    async def unknown(message: dict[str, Any]) -> None:
        return None

    assert may_block(unknown)  # a server it does not know: every send is timed


async def test_cut_connection_resets_or_flushes() -> None:
    left, right = socket.socketpair()
    closed: list[str] = []
    transport = SimpleNamespace(
        get_extra_info=lambda name: left,
        abort=lambda: closed.append("abort"),
        close=lambda: closed.append("close"),
    )
    server = _Server(transport=transport)
    assert cut_connection(server.send, flush=False)
    assert server.disconnected and closed == ["abort"]
    assert left.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER) != 0  # a reset, not a FIN
    flushed = _Server(transport=transport)
    assert cut_connection(flushed.send, flush=True) and closed[-1] == "close"

    async def unknown(message: dict[str, Any]) -> None:
        return None

    assert not cut_connection(unknown, flush=True)
    left.close()
    right.close()
