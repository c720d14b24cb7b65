"""Who is asking: the request ID and the client's address (SPEC 3.4).

The client address is the TCP peer, unless the peer is a trusted proxy
(TRUSTED_PROXIES); then the right-most X-Forwarded-For address that is not
itself trusted. An untrusted peer's own X-Forwarded-For is ignored, so it can
neither hide behind another address nor spend somebody else's rate limit.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from gateway.addresses import parse_address

__all__ = ["ClientAddress", "Networks", "is_trusted_proxy", "make_request_id", "resolve_client"]

type Networks = Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]
_REQUEST_ID = re.compile(r"[A-Za-z0-9._\-]{1,128}")


def make_request_id(incoming: str | None) -> str:
    """Keep a well-formed client X-Request-ID; otherwise make one: 32 hex
    digits, all random (128 bits from the OS: nothing in them counts a
    replica's requests or can be guessed from the ids before)."""
    if incoming and _REQUEST_ID.fullmatch(incoming):
        return incoming
    return secrets.token_hex(16)


@lru_cache(maxsize=4096)
def _peer(text: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address | None, str]:
    """The peer's address and its canonical text (or the text as given)."""
    ip = parse_address(text)
    return ip, str(ip) if ip is not None else text


def _trusted(ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None, networks: Networks) -> bool:
    return ip is not None and any(ip in net for net in networks)


def is_trusted_proxy(peer: str, networks: Networks) -> bool:
    return _trusted(_peer(peer)[0], networks)


@dataclass(frozen=True, slots=True)
class ClientAddress:
    client: str  # the address rate limits and logs use
    forwarded_for: str  # the X-Forwarded-For value sent to backends
    via_trusted_proxy: bool  # the peer is a trusted proxy: its X-Forwarded-* are believed


def resolve_client(peer: str | None, forwarded_for: str | None, trusted: Networks) -> ClientAddress:
    peer_ip, client = _peer(peer or "unknown")
    if not trusted or not _trusted(peer_ip, trusted):
        return ClientAddress(client, client, via_trusted_proxy=False)
    if not forwarded_for:
        return ClientAddress(client, client, via_trusted_proxy=True)
    onward = f"{forwarded_for}, {client}"
    hops = [hop for hop in (h.strip() for h in forwarded_for.split(",")) if hop]
    for hop in reversed(hops):
        ip = parse_address(hop)
        if ip is None:
            # Garbage where a trusted proxy should have written an address:
            # believe nothing further left.
            return ClientAddress(client, onward, via_trusted_proxy=True)
        if not _trusted(ip, trusted):
            return ClientAddress(str(ip), onward, via_trusted_proxy=True)
    first = parse_address(hops[0]) if hops else None
    return ClientAddress(str(first) if first else client, onward, via_trusted_proxy=True)
