"""IP lists (gateway/policies/ip.py): CIDRs read at their line, folded into a
set per prefix length, matched for IPv4, IPv6 and IPv4-mapped addresses."""

from __future__ import annotations

import ipaddress

import pytest

from gateway.addresses import parse_address
from gateway.errors import IpDenied
from gateway.policies.ip import OPTION, NetworkSet, ip_stage
from gateway.routes import RoutesFileError
from tests.calls import context, http_call, ok
from tests.conftest import table

ROUTES = table(
    """
    version: 1
    settings:
      ip: {deny: ["192.0.2.0/24"]}
    upstreams: {u: {url: "http://u"}}
    routes:
      - {name: default, path: /d, backends: [{upstream: u, path: /x}]}
      - name: office
        path: /o
        ip: {allow: ["10.0.0.0/8", "2001:db8::/32", "::ffff:172.16.0.0/108"], deny: ["10.1.0.0/16"]}
        backends: [{upstream: u, path: /x}]
      - {name: anyone, path: /a, ip: null, backends: [{upstream: u, path: /x}]}
    """
)
DEFAULT, OFFICE, ANYONE = ROUTES.routes
CONTEXT = context(ROUTES)


def test_settings_give_the_default_a_route_replaces_and_null_turns_off() -> None:
    assert OPTION.of(DEFAULT) == OPTION.default(ROUTES.settings)
    rule = OPTION.of(OFFICE)
    assert rule is not None and rule.deny == (ipaddress.ip_network("10.1.0.0/16"),)
    # an IPv4-mapped IPv6 network is the IPv4 network it is
    assert ipaddress.ip_network("172.16.0.0/12") in rule.allow
    assert OPTION.of(ANYONE) is None and ip_stage(ANYONE, CONTEXT) is None


def test_a_bad_cidr_is_an_error_at_its_line() -> None:
    with pytest.raises(RoutesFileError) as raised:
        table(
            """
            version: 1
            upstreams: {u: {url: "http://u"}}
            routes:
              - name: r
                path: /r
                ip:
                  allow: [10.0.0.0/8, 10.0.0.300/8]
                backends: [{upstream: u, path: /x}]
            """
        )
    assert "routes.yaml:8: route 'r': ip.allow[1]: '10.0.0.300/8' is not a CIDR" in str(
        raised.value
    )


@pytest.mark.parametrize(
    ("address", "inside"),
    [
        ("10.2.3.4", True),
        ("10.255.255.255", True),
        ("11.0.0.0", False),
        ("2001:db8::1", True),
        ("2001:db9::1", False),
        ("::ffff:10.2.3.4", True),  # IPv4-mapped: matched as 10.2.3.4
        ("172.16.9.9", True),
    ],
)
def test_membership_for_both_families(address: str, inside: bool) -> None:
    networks = NetworkSet(
        ipaddress.ip_network(n)
        for n in ("10.0.0.0/8", "10.3.0.0/16", "2001:db8::/32", "172.16.0.0/12")
    )
    found = parse_address(address)
    assert found is not None and (found in networks) is inside


def test_ten_thousand_networks_cost_what_ten_do() -> None:
    """One set lookup per prefix length the list uses, whatever its size (the
    time it takes is make bench's: PI). Counted here, not timed: a timed
    unit test measures the machine's load."""
    few = NetworkSet(ipaddress.ip_network(f"10.{i}.0.0/16") for i in range(10))
    many = NetworkSet(
        ipaddress.ip_network(f"{10 + i // 256}.{i % 256}.0.0/16") for i in range(10_000)
    )
    # Adjacent networks merge (ten /16s: a /13 and a /15), so the lengths
    # used are at most /0-/16 here: bounded by 17, not by 10,000.
    assert lookups(few) <= 17 and lookups(many) <= 17
    mixed = NetworkSet(
        ipaddress.ip_network(f"{11 + i % 200}.{i % 256}.{i // 256}.0/{16 + i % 17}", strict=False)
        for i in range(10_000)
    )
    assert lookups(mixed) <= 33  # one per prefix length at most, never one per network
    outside, inside = parse_address("203.0.113.9"), parse_address("11.0.0.1")
    assert outside is not None and inside is not None
    assert outside not in many and inside in many and inside in mixed


def lookups(networks: NetworkSet) -> int:
    """The set lookups a membership test makes: one per folded prefix length."""
    return len(networks._v4) + len(networks._v6)


async def test_the_stage_refuses_with_ip_denied() -> None:
    stage = ip_stage(OFFICE, CONTEXT)
    assert stage is not None
    await stage(ok)(http_call(OFFICE, client="10.2.3.4"))
    for address in ("10.1.2.3", "192.0.2.10", "unknown"):  # denied; outside allow; not an IP
        with pytest.raises(IpDenied) as refused:
            await stage(ok)(http_call(OFFICE, client=address))
        assert refused.value.status == 403 and refused.value.slug == "ip-denied"
    default = ip_stage(DEFAULT, CONTEXT)
    assert default is not None
    await default(ok)(http_call(DEFAULT, client="198.51.100.1"))  # deny only: others pass
    with pytest.raises(IpDenied):
        await default(ok)(http_call(DEFAULT, client="192.0.2.1"))
