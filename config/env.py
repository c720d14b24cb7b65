"""Typed reads of environment variables for config/settings.py.

Every reader returns the parsed value or raises `SettingError`, whose text is
the one line an operator sees before the process exits: `setting NAME: message`.
Nothing falls back silently to a default when a value is present but wrong
(`RELOAD=maybe` is an error, not "false").
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Sequence

from django.core.exceptions import ImproperlyConfigured

from gateway.routes.units import parse_duration, parse_size

__all__ = [
    "SettingError",
    "read_address",
    "read_bool",
    "read_choice",
    "read_duration",
    "read_list",
    "read_networks",
    "read_size",
    "read_text",
]

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
type Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class SettingError(ImproperlyConfigured):
    """An environment variable holds a value the gateway cannot use."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"setting {name}: {message}")
        self.name = name


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    return None if value is None or value.strip() == "" else value.strip()


def read_text(name: str, default: str) -> str:
    value = os.environ.get(name)
    return default if value is None else value


def read_bool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise SettingError(name, f"expected true/false, 1/0, yes/no or on/off, got {value!r}")


def read_choice(name: str, default: str, choices: Sequence[str]) -> str:
    value = _raw(name)
    if value is None:
        return default
    if value.lower() not in choices:
        raise SettingError(name, f"expected one of {', '.join(choices)}, got {value!r}")
    return value.lower()


def read_number(name: str, *, minimum: float, maximum: float, integer: bool = False) -> None:
    """Checks a number that a library reads itself (the OTEL_* variables)."""
    value = _raw(name)
    if value is None:
        return
    try:
        number = int(value) if integer else float(value)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise SettingError(name, f"expected {kind}, got {value!r}") from None
    if not minimum <= number <= maximum:
        raise SettingError(name, f"must be between {minimum:g} and {maximum:g}, got {value!r}")


def read_duration(name: str, default: float, *, minimum: float = 0.001) -> float:
    """Seconds: a bare number or `250ms`, `2s`, `1m`, `1h`."""
    value = _raw(name)
    if value is None:
        return default
    seconds = parse_duration(value)
    if seconds is None:
        raise SettingError(
            name, f"expected a number of seconds or a duration (2s, 1m), got {value!r}"
        )
    if seconds < minimum:
        raise SettingError(name, f"must be at least {minimum:g} s, got {value!r}")
    return seconds


def read_size(name: str, default: int, *, minimum: int = 1) -> int:
    """Bytes: a bare number or `8KiB`, `64KiB`, `512MiB`."""
    value = _raw(name)
    if value is None:
        return default
    size = parse_size(value)
    if size is None:
        raise SettingError(name, f"expected a size (8KiB, 512MiB or bytes), got {value!r}")
    if size < minimum:
        raise SettingError(name, f"must be at least {minimum} bytes, got {value!r}")
    return size


def read_list(name: str, default: Sequence[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def read_networks(name: str) -> tuple[Network, ...]:
    networks = []
    for item in read_list(name, ()):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise SettingError(name, f"{item!r} is not an IP address or CIDR") from None
    return tuple(networks)


def read_address(name: str, default: str) -> tuple[str, int] | None:
    """`host:port` (`[v6]:port` for IPv6), or None for `off`."""
    value = _raw(name) or default
    if value.lower() in _FALSE:
        return None
    host, sep, port = value.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SettingError(name, f"expected host:port or off, got {value!r}")
    return host, int(port)
