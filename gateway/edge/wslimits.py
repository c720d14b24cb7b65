"""The size of a WebSocket message uvicorn will take from a client.

uvicorn reads each client message whole before the application sees it, up
to its `--ws-max-size` (16 MiB by default), and its legacy `websockets`
implementation queues up to `--ws-max-queue` (32) of them: a hostile client
could make every connection hold hundreds of MiB. The routes file already
says how large a message may be (each WebSocket route's `max_message_size`),
so the server's limit follows it: the largest of the routes in use (a route
with a smaller limit is enforced by the relay, which closes with 1009), and
at most one queued message.

uvicorn reads these from its Config object whenever it opens a WebSocket
connection, and the Config exists before the application is imported;
properties on the class take precedence over the values set on the instance,
however uvicorn was started. A reload that changes the routes changes the
limit for the connections that follow.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

__all__ = ["limit_websocket_messages"]


def limit_websocket_messages(max_size: Callable[[], int]) -> bool:
    """Make uvicorn ask `max_size()` for every new WebSocket connection.
    False when the application is not run by uvicorn."""
    module = sys.modules.get("uvicorn.config")
    config = getattr(module, "Config", None)
    if config is None:
        return False

    def ignore(self: object, value: object) -> None:
        """The server's flag gives way to the routes file."""

    config.ws_max_size = property(lambda self: max_size(), ignore)
    config.ws_max_queue = property(lambda self: 1, ignore)
    return True
