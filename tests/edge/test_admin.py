"""The admin listener's app (gateway/edge/admin.py), as plain ASGI calls:
which Host it answers, the token, each path."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from gateway import serving
from gateway.assembly import build_gateway
from gateway.edge.admin import AdminApp, bind_admin
from gateway.runtime import Runtime
from gateway.types import Message
from tests.conftest import table


@pytest.fixture
def installed() -> Iterator[None]:
    previous = serving.current()
    routes = table(
        """
        version: 1
        upstreams: {u: {url: "http://u", headers: {Authorization: "Bearer secret-token"}}}
        routes: [{name: r, path: /r, backends: [{upstream: u, path: /x}]}]
        """
    )
    serving.install(build_gateway(routes, Runtime(redis_url="", failure_mode="open")))
    yield
    serving.install(previous)


async def call(
    app: AdminApp, path: str, method: str = "GET", **headers: str
) -> tuple[int, dict[bytes, bytes], bytes]:
    sent: list[Message] = []
    scope: dict[str, Any] = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [
            (k.lower().replace("_", "-").encode(), v.encode())
            for k, v in {"Host": "127.0.0.1:9901", **headers}.items()
        ],
        "server": ("127.0.0.1", 9901),
    }

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start, *bodies = sent
    return start["status"], dict(start["headers"]), b"".join(b.get("body", b"") for b in bodies)


@pytest.mark.parametrize(
    ("host", "status"),
    [("127.0.0.1:9901", 200), ("localhost", 200), ("ops.example", 200), ("evil.example", 421)],
)
async def test_only_its_own_address_localhost_and_admin_hosts(host: str, status: int) -> None:
    app = AdminApp("", ("ops.example",))
    assert (await call(app, "/healthz", Host=host))[0] == status


async def test_the_token_guards_everything_but_the_probes(installed: None) -> None:
    app = AdminApp("s3cret")
    status, headers, _ = await call(app, "/metrics")
    assert status == 401 and headers[b"www-authenticate"] == b"Bearer"
    assert (await call(app, "/metrics", Authorization="Bearer wrong"))[0] == 401
    assert (await call(app, "/metrics", Authorization="Bearer s3cret"))[0] == 200
    assert (await call(app, "/healthz"))[0] == 200 and (await call(app, "/readyz"))[0] == 200
    page = await call(app, "/", Accept="text/html")
    assert page[0] == 401 and b"<html" in page[2].lower()  # the page asks for the token


async def test_config_masks_secrets_and_other_paths_are_refused(installed: None) -> None:
    app = AdminApp("")
    status, _, body = await call(app, "/config")
    assert status == 200 and b"secret-token" not in body
    assert orjson.loads(body)["upstreams"]["u"]["headers"] == {"authorization": "***"}
    assert (await call(app, "/nowhere"))[0] == 404
    status, headers, _ = await call(app, "/metrics", method="POST")
    assert status == 405 and headers[b"allow"] == b"GET"
    events = await call(app, "/events", method="HEAD")
    assert events[0] == 200 and events[1][b"content-type"] == b"text/event-stream"


async def test_config_without_routes_is_503() -> None:
    previous = serving.current()
    serving.install(None)
    try:
        assert (await call(AdminApp(""), "/config"))[0] == 503
    finally:
        serving.install(previous)


def test_an_address_in_use_is_an_oserror_for_the_caller() -> None:
    first = bind_admin("127.0.0.1", 0)
    try:
        with pytest.raises(OSError, match="in use"):
            bind_admin("127.0.0.1", first.getsockname()[1])
    finally:
        first.close()
