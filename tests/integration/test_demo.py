"""What `make run` starts: the demo upstreams and the sample routes.yaml. The
README's first curl must answer exactly what the README shows."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.integration.conftest import Gateway, GatewayFactory
from tests.processes import PYTHON, ROOT, Process, start_process


def consecutive_free_ports(count: int) -> int:
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = int(probe.getsockname()[1])
        if base + count > 65535:
            continue
        sockets = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError(f"no {count} consecutive free ports")


# What `make run` sets for routes.yaml: the demo services, one port each.
DEMO_URLS = ("USERS_URL", "ORDERS_URL", "BILLING_URL", "LIVE_URL", "GREETER_URL")


def start_demo(directory: Path) -> tuple[Process, dict[str, str]]:
    """The demo upstreams as `make run` starts them, and the environment
    the gateway gets (HTTP2 on, as `make run` has it)."""
    base = consecutive_free_ports(len(DEMO_URLS))
    process = start_process(
        [PYTHON, "-m", "gateway.demo", "--port-base", str(base)],
        base,
        directory / "demo.log",
        ready_path="/users/1",
    )
    env = {name: f"http://127.0.0.1:{base + i}" for i, name in enumerate(DEMO_URLS)}
    return process, {**env, "HTTP2": "on"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    process, env = start_demo(tmp_path_factory.mktemp("demo"))
    yield env
    process.stop()


@pytest.fixture(scope="module")
def gw(start_gateway: GatewayFactory, demo: dict[str, str]) -> Gateway:
    return start_gateway((ROOT / "routes.yaml").read_text(), **demo)


def readme_output_after(command: str) -> str:
    """The output the README shows for a command in a console block."""
    readme = (ROOT / "README.md").read_text()
    start = readme.index(command) + len(command)
    block = readme[start:].split("\n$ ", 1)[0]
    return block.strip("\n")


def test_readme_dashboard_curl(gw: Gateway) -> None:
    documented = json.loads(
        readme_output_after("$ curl -s localhost:8000/api/users/1/dashboard | python3 -m json.tool")
    )
    response = gw.get("/api/users/1/dashboard")
    assert response.status_code == 200
    assert response.json() == documented
    assert response.headers["x-gateway-completed"] == "true"


def test_readme_error_and_proxy_curls(gw: Gateway) -> None:
    missing = gw.get("/api/users/9/dashboard")
    shown = readme_output_after("$ curl -si localhost:8000/api/users/9/dashboard")
    assert shown.startswith(f"HTTP/1.1 {missing.status_code}")
    body = json.loads(shown.rsplit("\n\n", 1)[1])
    assert {k: v for k, v in missing.json().items() if k != "request_id"} == {
        k: v for k, v in body.items() if k != "request_id"
    }
    catalog = gw.get("/catalog/books/42?lang=en")
    assert catalog.json() == json.loads(
        readme_output_after("$ curl -s 'localhost:8000/catalog/books/42?lang=en'")
    )


def test_readme_partner_curl(gw: Gateway) -> None:
    response = gw.get("/partners/users/2/orders", headers={"X-API-Key": "demo-key"})
    shown = readme_output_after(
        "$ curl -si localhost:8000/partners/users/2/orders -H 'X-API-Key: demo-key'"
    )
    assert shown.startswith("HTTP/1.1 200")
    assert response.json() == json.loads(shown.rsplit("\n", 1)[1])
    assert re.search(r"ratelimit-limit: 60", shown) and response.headers["ratelimit-limit"] == "60"
    assert gw.get("/partners/users/2/orders").status_code == 401


def test_the_overview_streams_as_the_demo_backends_finish(gw: Gateway) -> None:
    """The demo's orders answer after 300 ms and billing after 600 ms (the
    `delay` query in routes.yaml): the user record comes first, and the
    records are exactly what the README shows."""
    with httpx.stream(
        "GET", gw.url + "/api/users/1/overview", headers={"Accept": "application/x-ndjson"}
    ) as response:
        assert response.headers["content-type"] == "application/x-ndjson"
        records = [json.loads(line) for line in response.iter_lines()]
    assert [r.get("name") for r in records] == ["user", "orders", "billing", None]
    shown = readme_output_after(
        "$ curl -sN -H 'Accept: application/x-ndjson' localhost:8000/api/users/1/overview"
    )
    assert records == [json.loads(line) for line in shown.splitlines()]
    plain = gw.get("/api/users/1/overview").json()
    assert set(plain) == {"user", "orders", "billing"}


def paired_p50(first: str, second: str, count: int = 60) -> tuple[float, float]:
    """Median times of `count` requests to each URL, one after another on a
    kept-alive connection each, the way an interactive client (or a load
    test) calls; the two alternate, so that a busy machine slows both alike."""
    times: tuple[list[float], list[float]] = ([], [])
    with httpx.Client(timeout=10) as one, httpx.Client(timeout=10) as other:
        one.get(first)  # the connections, opened
        other.get(second)
        for _ in range(count):
            for client, url, taken in ((one, first, times[0]), (other, second, times[1])):
                started = time.perf_counter()
                assert client.get(url).status_code == 200
                taken.append(time.perf_counter() - started)
    return statistics.median(times[0]), statistics.median(times[1])


def test_the_gateway_adds_little_to_a_demo_upstream(gw: Gateway, demo: dict[str, str]) -> None:
    """Back to back on one connection, through the gateway and straight to
    the demo upstream: within 3 ms of each other at the median. (The demo's
    sockets once lacked TCP_NODELAY: every call then took ~43 ms.)"""
    direct, proxied = paired_p50(demo["BILLING_URL"] + "/v2/books/42", gw.url + "/catalog/books/42")
    assert direct < 0.01, f"direct p50 {direct * 1000:.1f} ms"
    assert proxied - direct < 0.003, f"{proxied * 1000:.1f} ms vs {direct * 1000:.1f} ms direct"


def test_the_ticks_stream_and_the_echo_websocket(gw: Gateway) -> None:
    with httpx.stream("GET", gw.url + "/events/ticks", timeout=5) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        data = next(line for line in response.iter_lines() if line.startswith("data: "))
    assert json.loads(data[6:])

    async def echo() -> tuple[object, object]:
        async with connect(gw.url.replace("http", "ws", 1) + "/ws/echo") as ws:
            await ws.send("hello")
            text = await ws.recv()
            await ws.send(b"\x00\x01")
            return text, await ws.recv()

    assert asyncio.run(echo()) == ("hello", b"\x00\x01")


def test_the_demo_greeter_over_grpc(gw: Gateway) -> None:
    """The README's Python line, and a server stream."""
    import grpc

    with grpc.insecure_channel(f"127.0.0.1:{gw.process.port}") as channel:
        hello = channel.unary_unary("/demo.v1.Greeter/SayHello")(b"\n\x03Ada", timeout=5)
        countdown = channel.unary_stream("/demo.v1.Greeter/Countdown")(b"\x08\x03", timeout=5)
        assert hello == b"\n\x0bHello, Ada!"
        assert list(countdown) == [b"\n\x013", b"\n\x012", b"\n\x011"]
        with pytest.raises(grpc.RpcError) as missing:
            channel.unary_unary("/demo.v1.Greeter/Nope")(b"", timeout=5)
        assert missing.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_the_demo_greeter_over_grpc_web(gw: Gateway) -> None:
    reply = gw.client.post(
        "/demo.v1.Greeter/SayHello",
        content=b"\x00\x00\x00\x00\x05\x0a\x03Ada",
        headers={"content-type": "application/grpc-web+proto"},
    )
    assert reply.content.startswith(b"\x00\x00\x00\x00\x0d\n\x0bHello, Ada!\x80")
    assert reply.content.endswith(b"grpc-status: 0\r\n")
