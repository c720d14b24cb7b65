"""`ip` lists through a real gateway (SPEC 3.16): the client address of 3.4
(a trusted proxy's X-Forwarded-For), IPv4, IPv6 and IPv4-mapped alike."""

from __future__ import annotations

import pytest

from tests.integration.conftest import Gateway, GatewayFactory

ROUTES = """
version: 1
settings:
  ip: {deny: ["203.0.113.0/24"]}
routes:
  - name: office
    path: /office
    ip:
      allow: ["10.0.0.0/8", "2001:db8::/32"]
      deny: ["10.66.0.0/16"]
    static: {body: {ok: true}}
  - name: public
    path: /public
    static: {body: {ok: true}}
  - name: open
    path: /open
    ip: null
    static: {body: {ok: true}}
"""


@pytest.fixture(scope="module")
def gw(start_gateway: GatewayFactory) -> Gateway:
    return start_gateway(ROUTES, TRUSTED_PROXIES="127.0.0.1/32")


@pytest.mark.parametrize(
    ("forwarded", "path", "status"),
    [
        ("10.1.2.3", "/office", 200),
        ("10.66.1.1", "/office", 403),  # deny wins over allow
        ("192.0.2.1", "/office", 403),  # outside allow
        ("::ffff:10.1.2.3", "/office", 200),  # IPv4-mapped: 10.1.2.3
        ("2001:db8::7", "/office", 200),
        ("2001:db9::7", "/office", 403),
        ("203.0.113.5", "/public", 403),  # the settings default
        ("198.51.100.5", "/public", 200),
        ("203.0.113.5", "/open", 200),  # ip: null
    ],
)
def test_the_client_address_a_trusted_proxy_names_is_checked(
    gw: Gateway, forwarded: str, path: str, status: int
) -> None:
    answer = gw.get(path, headers={"X-Forwarded-For": forwarded})
    assert answer.status_code == status
    if status == 403:
        assert answer.json()["type"] == "urn:gateway:problem:ip-denied"
        assert answer.headers["content-type"] == "application/problem+json"


def test_an_untrusted_peer_cannot_pick_its_address(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(ROUTES)  # no TRUSTED_PROXIES: the peer, 127.0.0.1, is the client
    assert gw.get("/office", headers={"X-Forwarded-For": "10.1.2.3"}).status_code == 403
