"""Upstream clients (gateway/upstream/clients.py): no cookies, no redirects, no proxies."""

from __future__ import annotations

import httpx
import respx

from gateway.upstream.clients import UpstreamClients, create_upstream_client
from tests.conftest import table

UPSTREAM = table(
    "version: 1\nupstreams: {u: {url: 'http://u.svc', max_connections: 7}}\nroutes: []\n"
).upstreams["u"]


async def test_client_never_keeps_cookies() -> None:
    client = create_upstream_client(UPSTREAM)
    with respx.mock(using="httpx") as mock:
        mock.get("http://u.svc/login").respond(headers={"Set-Cookie": "session=alice; Path=/"})
        echo = mock.get("http://u.svc/next").respond(json={})
        await client.send(httpx.Request("GET", "http://u.svc/login"))
        await client.get("http://u.svc/next")
    assert len(client.cookies.jar) == 0
    assert "cookie" not in echo.calls.last.request.headers
    await client.aclose()


async def test_client_does_not_follow_redirects() -> None:
    client = create_upstream_client(UPSTREAM)
    with respx.mock(using="httpx") as mock:
        mock.get("http://u.svc/a").respond(302, headers={"Location": "http://elsewhere/"})
        response = await client.get("http://u.svc/a")
    assert response.status_code == 302
    assert client.trust_env is False  # HTTP(S)_PROXY and friends are ignored
    assert dict(client.headers) == {}
    await client.aclose()


async def test_clients_are_shared_while_the_upstream_is_unchanged() -> None:
    clients = UpstreamClients()
    first = clients.for_upstreams({"u": UPSTREAM})
    again = clients.for_upstreams({"u": UPSTREAM})
    assert first["u"] is again["u"]
    changed = table(
        "version: 1\nupstreams: {u: {url: 'http://u.svc', max_connections: 8}}\nroutes: []\n"
    ).upstreams
    assert clients.for_upstreams(changed)["u"] is not first["u"]
    await clients.aclose()
