"""One parser of IP addresses for the edge and the `ip` lists (gateway/addresses.py)."""

from __future__ import annotations

import ipaddress

import pytest

from gateway.addresses import parse_address


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("10.0.0.1", "10.0.0.1"),
        (" 10.0.0.1:443 ", "10.0.0.1"),
        ("::ffff:10.0.0.1", "10.0.0.1"),  # IPv4-mapped: the IPv4 address it is
        ("[2001:db8::1]:8443", "2001:db8::1"),
        ("2001:db8::1", "2001:db8::1"),
        ("unknown", None),
        ("10.0.0.300", None),
    ],
)
def test_parse_address(text: str, address: str | None) -> None:
    expected = None if address is None else ipaddress.ip_address(address)
    assert parse_address(text) == expected
