"""Client address and request ID (gateway/edge/address.py, SPEC 3.4)."""

from __future__ import annotations

import ipaddress

import pytest

from gateway.edge.address import ClientAddress, make_request_id, resolve_client

TRUSTED = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8"))


@pytest.mark.parametrize(
    ("peer", "xff", "expected"),
    [
        ("203.0.113.5", None, ClientAddress("203.0.113.5", "203.0.113.5", False)),
        (
            "203.0.113.5",
            "1.2.3.4",
            ClientAddress("203.0.113.5", "203.0.113.5", False),
        ),  # untrusted: XFF dropped
        ("10.0.0.1", None, ClientAddress("10.0.0.1", "10.0.0.1", True)),
        ("10.0.0.1", "1.2.3.4", ClientAddress("1.2.3.4", "1.2.3.4, 10.0.0.1", True)),
        (
            "10.0.0.1",
            "9.9.9.9, 1.2.3.4, 10.0.0.7",
            ClientAddress("1.2.3.4", "9.9.9.9, 1.2.3.4, 10.0.0.7, 10.0.0.1", True),
        ),
        (
            "10.0.0.1",
            "10.0.0.9, 10.0.0.7",
            ClientAddress("10.0.0.9", "10.0.0.9, 10.0.0.7, 10.0.0.1", True),
        ),
        (
            "10.0.0.1",
            "garbage, 1.2.3.4",
            ClientAddress("1.2.3.4", "garbage, 1.2.3.4, 10.0.0.1", True),
        ),
        (
            "10.0.0.1",
            "1.2.3.4, garbage",
            ClientAddress("10.0.0.1", "1.2.3.4, garbage, 10.0.0.1", True),
        ),
        ("10.0.0.1", "1.2.3.4:5678", ClientAddress("1.2.3.4", "1.2.3.4:5678, 10.0.0.1", True)),
        (
            "10.0.0.1",
            "[2001:db8::1]:80",
            ClientAddress("2001:db8::1", "[2001:db8::1]:80, 10.0.0.1", True),
        ),
        ("::ffff:10.0.0.1", "1.2.3.4", ClientAddress("1.2.3.4", "1.2.3.4, 10.0.0.1", True)),
        ("fd00::1", "2001:db8::2", ClientAddress("2001:db8::2", "2001:db8::2, fd00::1", True)),
        (None, "1.2.3.4", ClientAddress("unknown", "unknown", False)),
    ],
)
def test_resolve_client(peer: str | None, xff: str | None, expected: ClientAddress) -> None:
    assert resolve_client(peer, xff, TRUSTED) == expected


def test_no_trusted_proxies_means_the_peer() -> None:
    assert resolve_client("127.0.0.1", "1.2.3.4", ()) == ClientAddress(
        "127.0.0.1", "127.0.0.1", False
    )


def test_request_ids() -> None:
    assert make_request_id("abc.DEF_1-2") == "abc.DEF_1-2"
    assert make_request_id("x" * 128) == "x" * 128
    for bad in (None, "", "x" * 129, "a b", "a\nb", "ünï"):
        generated = make_request_id(bad)
        assert generated != bad
        assert len(generated) == 32
    assert make_request_id(None) != make_request_id(None)
    ids = [make_request_id(None) for _ in range(1000)]
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    # random throughout: no prefix shared by every id, no counter at the end
    assert len({i[:16] for i in ids}) == 1000 and len({i[-4:] for i in ids}) > 900
