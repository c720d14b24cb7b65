"""What the gateway knows of the ASGI server's side of a connection, for
the layers that send answers (the HTTP handler, the WebSocket relay):

- `may_block(send)`: could this send wait for the client? uvicorn's waits
  while the client's socket buffer is over its high-water mark; most sends
  cannot wait, and only those that can are given a deadline
  (CLIENT_SEND_TIMEOUT), which costs a timer;
- `cut_connection(send)`: end a connection mid-answer without uvicorn
  reporting an application that returned without finishing.

An HTTP/2 stream (gateway/edge/h2stream.py) answers both itself
(`may_block()`, `cut()`). Otherwise both read uvicorn's internals: the
object whose bound method `send` is (the HTTP request cycle, or the
WebSocket protocol), its `transport`, `flow`
(`write_paused`), `writable` and `disconnected`. uvicorn is pinned in
pyproject.toml, and tests/test_asgi.py fails on a version that moved them;
with another server both answer safely (every send is timed, nothing is cut
by hand).
"""

from __future__ import annotations

import contextlib
import socket
import struct
from typing import Any

__all__ = ["cut_connection", "may_block"]

_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() resets, dropping what is unsent


def may_block(send: Any) -> bool:
    """Could `send` wait for the client (uvicorn waits while the socket's
    buffer is over its high-water mark)? True when it cannot tell."""
    server = getattr(send, "__self__", None)
    if server is not None and hasattr(server, "cut"):  # an HTTP/2 stream
        return bool(server.may_block())
    flow = getattr(server, "flow", None)  # HTTP
    if flow is not None:
        return bool(flow.write_paused)
    writable = getattr(server, "writable", None)  # WebSockets
    return writable is None or not writable.is_set()


def cut_connection(send: Any, *, flush: bool) -> bool:
    """End the client's connection mid-answer, the way a proxy cuts a stream:
    no final chunk, so the client knows the answer is incomplete. `flush`
    sends what is already buffered first (a stream cut for silence); without
    it the buffer is dropped, the kernel's too (a reset, as nginx's
    `reset_timedout_connection`: a client that reads nothing would otherwise
    keep megabytes of socket buffer trickling out to it). uvicorn is told
    the client is gone, so that it does not report an application that
    returned without finishing its answer. False when the
    server is not one the gateway knows how to cut (it then closes the
    connection itself, and says so in its log)."""
    cycle: Any = getattr(send, "__self__", None)
    if hasattr(cycle, "cut"):  # an HTTP/2 stream: reset it, or GOAWAY its connection
        cycle.cut(flush=flush)
        return True
    transport = getattr(cycle, "transport", None)
    if transport is None or not hasattr(cycle, "disconnected"):
        return False
    cycle.disconnected = True
    if flush:
        transport.close()
        return True
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
    transport.abort()
    return True
