"""Keep-alive connections to one origin: at most `max_connections`, the most
recently used first (it is the least likely to have been closed by the
server), idle ones dropped after `keepalive` seconds, callers waiting in
order for a free one. Hostnames are resolved once per DNS_TTL seconds, so
new connections do not each cost a resolver round trip (on a thread).

Slots and waiters: a connection counts against the limit from the moment it
is being opened until it is gone. Whenever one goes (discarded after an
answer that cannot be followed by another, closed by the server, failed to
connect) its slot goes to the first waiter at once, and a connection that
may serve again goes to the first waiter once it has settled: no caller ever
waits for a connection that nothing will hand over.

A released connection settles for SETTLE_SECONDS before it serves again:
bytes a broken upstream sends just after a complete answer (a second write)
arrive while nothing is waiting for them, and close the connection instead
of passing for the next answer. Before an idle (or settled) connection is
handed out, its socket is polled: any byte or end of file waiting there
means the upstream said something nobody asked for, and the connection is
discarded (counted in gateway_upstream_connections_discarded_total). Any such
violation also ends reuse for the origin: from then on every request gets a
connection of its own (an upstream that sends unsolicited answers cannot be
trusted with a second request on a connection, ever), until its definition
changes or the process restarts.

The race that remains is inherent to HTTP/1.1 keep-alive: an upstream that
writes a second, unsolicited answer only after the next request went out on
that connection is indistinguishable from one that answers it. The first
such answer is caught (bytes after it), and the origin is never reused again.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import ssl
import time
from collections import deque

from gateway.observe import metrics
from gateway.upstream.h1.connection import DEFAULT_MAX_HEADER_SIZE, H1Connection
from gateway.upstream.tls import TlsSource, handshake_reason

__all__ = ["DNS_TTL", "SETTLE_SECONDS", "Pool", "PoolTimeout"]

logger = logging.getLogger("gateway.upstream")
DNS_TTL = 10.0
SETTLE_SECONDS = 0.005


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
        ssl_context: ssl.SSLContext | TlsSource | None,
        max_header_size: int = DEFAULT_MAX_HEADER_SIZE,
        name: str = "",
    ) -> None:
        self.host, self.port = host, port
        self.name = name or f"{host}:{port}"  # the upstream, for metrics and logs
        self._max_header_size = max_header_size
        self._max = max_connections
        self._keepalive = keepalive
        self._ssl = ssl_context
        self._idle: list[H1Connection] = []
        self._settling: deque[H1Connection] = deque()  # released, oldest first
        self._settle_timer: asyncio.TimerHandle | None = None
        self.distrusted = False  # an answer broke its framing: no connection is reused
        self._open = 0  # connections counted against the limit (connecting, active, idle)
        self._waiters: deque[asyncio.Future[H1Connection | None]] = deque()
        self._resolved: tuple[float, list[str]] | None = None
        self.closed = False

    @property
    def in_use(self) -> int:
        """Connections counted against the limit (opening, lent out, settling, idle)."""
        return self._open

    async def acquire(
        self, *, connect_timeout: float | None, pool_timeout: float | None
    ) -> H1Connection:
        while True:
            now = time.monotonic()
            self._settle(now)
            while self._idle:
                conn = self._idle.pop()
                if conn.closed or now - conn.idle_since > self._keepalive:
                    self._forget(conn)
                elif conn.unsolicited():
                    self._discard_unsolicited(conn)
                else:
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
            self._arm_settle()  # a settling connection will come to this waiter
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
        """A cycle ended: keep the connection (once settled) if it can serve another."""
        if conn.reusable and not self.closed and not self.distrusted:
            conn.reset()
            conn.state = "settling"
            self._settling.append(conn)
            self._arm_settle()
            return
        self._forget(conn)

    def lost(self, conn: H1Connection) -> None:
        """The server closed (or wrote to) a connection nobody was using."""
        if conn in self._idle:
            self._idle.remove(conn)
        elif conn in self._settling:
            self._settling.remove(conn)
        self._forget(conn)

    def distrust(self) -> None:
        """An answer broke its framing (or bytes came unasked): reuse none of
        this origin's connections from now on."""
        metrics.UPSTREAM_DISCARDS.labels(self.name, "framing").inc()
        if not self.distrusted:
            self.distrusted = True
            logger.warning(
                "upstream %s (%s:%d) sent bytes outside an answer's framing; its connections"
                " are no longer reused (a new one per request) until its definition changes"
                " or the gateway restarts",
                self.name,
                self.host,
                self.port,
            )
        for conn in [*self._idle, *self._settling]:
            self.lost(conn)

    def close(self) -> None:
        self.closed = True
        if self._settle_timer is not None:
            self._settle_timer.cancel()
            self._settle_timer = None
        for conn in [*self._idle, *self._settling]:
            conn.state = "gone"
            conn.discard()
        self._idle.clear()
        self._settling.clear()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(ConnectionError("the client is closed"))

    # --- settling ------------------------------------------------------------------
    def _settle(self, now: float) -> None:
        """Connections released SETTLE_SECONDS ago become idle (or go to a waiter)."""
        while self._settling and now - self._settling[0].idle_since >= SETTLE_SECONDS:
            conn = self._settling.popleft()
            if conn.closed:
                self._forget(conn)
            elif conn.unsolicited():
                self._discard_unsolicited(conn)
            elif not self._wake_one(conn):
                conn.state = "idle"
                self._idle.append(conn)

    def _arm_settle(self) -> None:
        """While someone waits and a connection settles, a timer hands it over
        the moment it has settled."""
        if self._settle_timer is None and self._waiters and self._settling:
            delay = self._settling[0].idle_since + SETTLE_SECONDS - time.monotonic()
            self._settle_timer = asyncio.get_running_loop().call_later(
                max(delay, 0.0), self._settled
            )

    def _settled(self) -> None:
        self._settle_timer = None
        self._settle(time.monotonic())
        self._arm_settle()

    # --- slots ---------------------------------------------------------------------
    def _pass_on(self, conn: H1Connection | None) -> None:
        """A connection (or a free slot, None) that its waiter could not take."""
        if conn is None:
            self._wake_one(None)
        elif not self._wake_one(conn):
            conn.state = "idle"
            self._idle.append(conn)

    def _discard_unsolicited(self, conn: H1Connection) -> None:
        """An idle connection with something to read: the upstream spoke unasked."""
        metrics.UPSTREAM_DISCARDS.labels(self.name, "unsolicited").inc()
        self._forget(conn)

    def _forget(self, conn: H1Connection) -> None:
        """The connection is gone for good: its slot goes to the first waiter."""
        conn.discard()
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

    # --- connecting ----------------------------------------------------------------
    async def _connect(self) -> H1Connection:
        loop = asyncio.get_running_loop()
        last_error: OSError | None = None
        context, server_name = None, None
        if isinstance(self._ssl, TlsSource):
            context, server_name = self._ssl.context(), self._ssl.server_name(self.host)
        elif self._ssl is not None:
            context, server_name = self._ssl, self.host
        for address in await self._addresses():
            try:
                _, conn = await loop.create_connection(
                    lambda: H1Connection(self.lost, self.distrust, self._max_header_size),
                    address,
                    self.port,
                    ssl=context,
                    server_hostname=server_name,
                )
            except ssl.SSLError as exc:  # the handshake: say why, once per failed connection
                logger.warning(
                    "TLS handshake with upstream %s (%s:%d) failed: %s",
                    self.name,
                    self.host,
                    self.port,
                    handshake_reason(exc),
                    extra={"upstream": self.name},
                )
                last_error = exc
                continue
            except OSError as exc:
                last_error = exc
                continue
            return conn
        assert last_error is not None
        try:
            raise last_error
        finally:
            last_error = None  # the traceback holds this frame: no cycle through it

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
