"""Keep-alive connections to one origin: at most `max_connections`, the most
recently used first (it is the least likely to have been closed by the
server), idle ones dropped after `keepalive` seconds, callers waiting in
order for a free one. Hostnames are resolved once per DNS_TTL seconds, so
new connections do not each cost a resolver round trip (on a thread)."""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import time
from collections import deque

from .connection import DEFAULT_MAX_HEADER_SIZE, H1Connection

__all__ = ["DNS_TTL", "Pool", "PoolTimeout"]

DNS_TTL = 10.0


class PoolTimeout(TimeoutError):
    """No connection became free in time."""


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class Pool:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        max_connections: int,
        keepalive: float,
        ssl_context: ssl.SSLContext | None,
        max_header_size: int = DEFAULT_MAX_HEADER_SIZE,
    ) -> None:
        self.host, self.port = host, port
        self._max_header_size = max_header_size
        self._max = max_connections
        self._keepalive = keepalive
        self._ssl = ssl_context
        self._idle: list[H1Connection] = []
        self._open = 0  # connections counted against the limit (connecting, active, idle)
        self._waiters: deque[asyncio.Future[H1Connection | None]] = deque()
        self._resolved: tuple[float, list[str]] | None = None
        self.closed = False

    async def acquire(
        self, *, connect_timeout: float | None, pool_timeout: float | None
    ) -> H1Connection:
        while True:
            now = time.monotonic()
            while self._idle:
                conn = self._idle.pop()
                if conn.closed or now - conn.idle_since > self._keepalive:
                    self._forget(conn)
                    continue
                conn.state = "active"
                return conn
            if self._open < self._max:
                self._open += 1
                try:
                    if connect_timeout is None:
                        return await self._connect()
                    async with asyncio.timeout(connect_timeout):
                        return await self._connect()
                except BaseException:
                    self._open -= 1
                    self._wake_one(None)
                    raise
            waiter: asyncio.Future[H1Connection | None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                async with asyncio.timeout(pool_timeout):
                    handed = await waiter
            except BaseException as exc:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                elif waiter.done() and not waiter.cancelled():
                    self._pass_on(waiter.result())  # handed over just as we gave up
                if isinstance(exc, TimeoutError):
                    raise PoolTimeout("no connection free within the pool timeout") from None
                raise
            if handed is not None:
                handed.state = "active"
                return handed

    def release(self, conn: H1Connection) -> None:
        """A cycle ended: keep the connection if it can serve another."""
        if conn.reusable and not self.closed:
            conn.reset()
            if self._wake_one(conn):
                return
            conn.state = "idle"
            self._idle.append(conn)
            return
        conn.close()
        if conn.state != "gone":
            conn.state = "gone"
            self._open -= 1
            self._wake_one(None)

    def lost(self, conn: H1Connection) -> None:
        """The server closed an idle connection."""
        if conn in self._idle:
            self._idle.remove(conn)
        self._forget(conn)

    def close(self) -> None:
        self.closed = True
        for conn in self._idle:
            conn.state = "gone"
            conn.close()
        self._idle.clear()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(ConnectionError("the client is closed"))

    def _pass_on(self, conn: H1Connection | None) -> None:
        """A connection (or a free slot, None) that its waiter could not take."""
        if conn is None:
            self._wake_one(None)
        elif not self._wake_one(conn):
            conn.state = "idle"
            self._idle.append(conn)

    def _forget(self, conn: H1Connection) -> None:
        conn.close()
        if conn.state != "gone":
            conn.state = "gone"
            self._open -= 1
            self._wake_one(None)

    def _wake_one(self, conn: H1Connection | None) -> bool:
        """Hand `conn` (or, with None, a free slot) to the first live waiter."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return True
        return False

    async def _connect(self) -> H1Connection:
        loop = asyncio.get_running_loop()
        last_error: OSError | None = None
        for address in await self._addresses():
            try:
                _, conn = await loop.create_connection(
                    lambda: H1Connection(self.lost, self._max_header_size),
                    address,
                    self.port,
                    ssl=self._ssl,
                    server_hostname=self.host if self._ssl is not None else None,
                )
            except OSError as exc:
                last_error = exc
                continue
            return conn
        assert last_error is not None
        raise last_error

    async def _addresses(self) -> list[str]:
        if _is_ip(self.host):
            return [self.host]
        now = time.monotonic()
        if self._resolved is None or self._resolved[0] < now:
            infos = await asyncio.get_running_loop().getaddrinfo(
                self.host, self.port, type=1
            )  # SOCK_STREAM
            addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
            self._resolved = (now + DNS_TTL, addresses)
        return self._resolved[1]
