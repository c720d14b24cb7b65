"""IP addresses as the gateway reads them: from a socket peer, an
X-Forwarded-For hop or the client address (edge/address.py), and for `ip`
lists (policies/ip.py). One parser, so both agree: an optional port or
brackets dropped, IPv4-mapped IPv6 (`::ffff:10.0.0.1`) read as the IPv4
address it is."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

__all__ = ["Address", "parse_address"]

type Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@lru_cache(maxsize=65536)
def parse_address(text: str) -> Address | None:
    """The address `text` names ("10.0.0.1", "10.0.0.1:443", "[2001:db8::1]:443"),
    or None when it is not one."""
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[v6]:port"
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "v4:port"
        text = text.partition(":")[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip
