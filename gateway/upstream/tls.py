"""TLS to upstreams (SPEC 3.17): an upstream's `tls:` as the SSL contexts its
connections (HTTP and WebSocket) are opened with.

    tls:
      ca: certs/internal-ca.pem          # verify against this CA (default: the system's)
      cert: certs/gateway.pem            # a client certificate (mTLS), with its key
      key: certs/gateway-key.pem
      server_name: users.internal        # SNI and the name checked (default: the URL's host)
      verify: false                      # only with insecure: true beside it

File paths are relative to the routes file. A `TlsSource` builds the context
when first asked and checks the files' signatures (device, inode, size,
mtime: a Kubernetes Secret update swaps a symlink) at most every
RECHECK_SECONDS when a connection is opened: a rotated certificate is used
for new connections within seconds, without a restart; a rotated file that
does not load leaves the last good context in use (logged). Connections
already open keep the certificate they were opened with.

A handshake that fails is a connection failure (the route answers 502) and
one log line says why, in the words OpenSSL gives (unknown CA, name
mismatch, expired).
"""

from __future__ import annotations

import logging
import os
import ssl
import time
from functools import cache

from gateway.routes.model import UpstreamTls
from gateway.routes.tls import build_context

__all__ = ["RECHECK_SECONDS", "TlsSource", "handshake_reason", "tls_source"]

logger = logging.getLogger("gateway.upstream")
RECHECK_SECONDS = 5.0


def _signature(path: str) -> tuple[int, int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class TlsSource:
    """The current context for one `tls:` configuration."""

    def __init__(self, config: UpstreamTls) -> None:
        self.config = config
        self._context: ssl.SSLContext | None = None
        self._signatures: tuple[tuple[int, int, int, int] | None, ...] = ()
        self._checked = 0.0

    def context(self) -> ssl.SSLContext:
        now = time.monotonic()
        if self._context is not None and now - self._checked < RECHECK_SECONDS:
            return self._context
        self._checked = now
        signatures = tuple(_signature(f) for f in self.config.files)
        if self._context is not None and signatures == self._signatures:
            return self._context
        try:
            context = build_context(self.config)
        except (OSError, ssl.SSLError) as exc:
            if self._context is None:
                raise
            logger.error(
                "upstream TLS files changed but do not load (%s); the previous ones stay in use",
                exc,
            )
            return self._context
        if self._context is not None:
            logger.info("upstream TLS files changed: new connections use them")
        self._context, self._signatures = context, signatures
        return context

    def server_name(self, host: str) -> str:
        return self.config.server_name or host


@cache
def tls_source(config: UpstreamTls) -> TlsSource:
    """One source per configuration, shared by an upstream's HTTP client and
    its WebSocket connections, and kept across reloads that do not change it."""
    return TlsSource(config)


def handshake_reason(exc: BaseException) -> str:
    """Why a TLS handshake failed, in a few words."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verification failed: {exc.verify_message or exc.reason}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or exc}"
    return str(exc) or type(exc).__name__
