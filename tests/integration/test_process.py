"""The gateway as a process: start-up, probes, request IDs, client addresses,
no per-request threads, no shared cookies, clean shutdown (SPEC 2, 3.4, 3.9)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import (
    PYTHON,
    ROOT,
    Gateway,
    GatewayFactory,
    Stub,
    free_port,
    gateway_command,
    start_process,
)

ROUTES = """
version: 1
upstreams:
  stub: {url: "${STUB}", timeout: 3s}
routes:
  - name: slow
    path: /slow
    backends: [{upstream: stub, path: /delay/50/x, key: x}]
  - name: fan
    path: /fan
    backends:
      - {upstream: stub, path: /delay/20/a, key: a}
      - {upstream: stub, path: /delay/20/b, key: b}
  - name: set-cookie
    path: /set-cookie
    backends: [{upstream: stub, path: /cookie/set, key: c}]
  - name: echo
    path: /echo
    backends: [{upstream: stub, path: /echo/e, key: e}]
  - name: proxy
    path: /p/{rest:path}
    proxy: {upstream: stub, path: "/{rest}"}
  - name: two-seconds
    path: /two-seconds
    backends: [{upstream: stub, path: /delay/2000/x, key: x}]
"""


@pytest.fixture(scope="module")
def gw(start_gateway: GatewayFactory, stub: Stub) -> Gateway:
    return start_gateway(ROUTES, STUB=stub.url)


def sent_headers(body: dict[str, Any]) -> dict[str, str]:
    return dict(body["headers"])


async def burst(url: str, n: int) -> list[int]:
    limits = httpx.Limits(max_connections=n)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        responses = await asyncio.gather(*(client.get(url) for _ in range(n)))
    return [r.status_code for r in responses]


def test_concurrent_requests_create_no_threads(gw: Gateway) -> None:
    assert asyncio.run(burst(gw.url + "/fan", 20)) == [200] * 20  # warm pools and caches
    before = gw.process.status("Threads")
    assert asyncio.run(burst(gw.url + "/fan", 200)) == [200] * 200
    assert asyncio.run(burst(gw.url + "/p/delay/10/x", 200)) == [200] * 200
    assert gw.process.status("Threads") == before


def test_upstream_cookies_are_never_replayed(gw: Gateway) -> None:
    assert gw.get("/set-cookie").status_code == 200  # the upstream sets session=alice-secret
    assert gw.get("/p/cookie/set").headers.get_list("set-cookie")  # ...via the proxy too
    for path in ("/echo", "/p/echo/e"):
        body = gw.get(path).json()
        headers = sent_headers(body.get("e", body))
        assert "cookie" not in headers, headers


@pytest.mark.parametrize("host", ["10.1.2.3:8000", "evil.example", ""])
def test_probes_answer_whatever_the_host(
    start_gateway: GatewayFactory, stub: Stub, host: str
) -> None:
    gw = start_gateway(ROUTES, STUB=stub.url, ALLOWED_HOSTS="gateway.example.com")
    assert httpx.get(gw.url + "/healthz", headers={"Host": host}).status_code == 200
    ready = httpx.get(gw.url + "/readyz", headers={"Host": host})
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready"}
    refused = httpx.get(gw.url + "/echo", headers={"Host": host})
    assert refused.status_code == 400
    assert refused.headers["content-type"] == "application/problem+json"
    assert httpx.get(gw.url + "/echo", headers={"Host": "gateway.example.com"}).status_code == 200


def test_request_id_is_kept_or_generated(gw: Gateway) -> None:
    kept = gw.get("/echo", headers={"X-Request-ID": "req.42_A-b"})
    assert kept.headers["x-request-id"] == "req.42_A-b"
    assert sent_headers(kept.json()["e"])["x-request-id"] == "req.42_A-b"
    for bad in ("has space", "x" * 129, "semi;colon", ""):
        generated = gw.get("/echo", headers={"X-Request-ID": bad})
        rid = generated.headers["x-request-id"]
        assert rid != bad
        assert 1 <= len(rid) <= 128
        assert sent_headers(generated.json()["e"])["x-request-id"] == rid
    for path in ("/nowhere", "/healthz", "/readyz"):
        assert gw.get(path).headers["x-request-id"]


def test_untrusted_peer_cannot_claim_an_address(gw: Gateway) -> None:
    body = gw.get(
        "/echo", headers={"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    ).json()
    headers = sent_headers(body["e"])
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"


def test_trusted_proxy_chain(start_gateway: GatewayFactory, stub: Stub) -> None:
    gw = start_gateway(ROUTES, STUB=stub.url, TRUSTED_PROXIES="127.0.0.0/8,10.0.0.0/8")
    body = gw.get(
        "/echo",
        headers={
            "X-Forwarded-For": "198.51.100.7, 203.0.113.9, 10.0.0.5",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "api.example.com",
        },
    ).json()
    headers = sent_headers(body["e"])
    assert headers["x-forwarded-for"] == "198.51.100.7, 203.0.113.9, 10.0.0.5, 127.0.0.1"
    assert headers["x-forwarded-proto"] == "https"
    assert headers["x-forwarded-host"] == "api.example.com"


def run_gateway(routes_file: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        gateway_command(free_port()),
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "ROUTES_FILE": routes_file, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_invalid_routes_file_stops_start_up(tmp_path: Path) -> None:
    bad = tmp_path / "routes.yaml"
    bad.write_text(
        "version: 1\nupstreams:\n  u: {url: 'ftp://x'}\nroutes:\n  - name: a\n    path: nope\n    backends: []\n"
    )
    result = run_gateway(str(bad))
    assert result.returncode != 0
    assert f"{bad}:3: upstream 'u'" in result.stderr
    assert f"{bad}:6: route 'a': path: must start with '/'" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "Uvicorn running" not in result.stderr + result.stdout


def test_a_protocol_that_cannot_enforce_the_limits_is_refused() -> None:
    result = subprocess.run(
        [
            PYTHON,
            "-m",
            "uvicorn",
            "config.asgi:application",
            "--port",
            str(free_port()),
            "--http",
            "h11",
        ],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "ROUTES_FILE": str(ROOT / "routes.yaml")},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.startswith("gateway:")]
    assert len(lines) == 1 and "--http h11" in lines[0] and "MAX_REQUEST_LINE" in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert "Uvicorn running" not in result.stderr + result.stdout


def test_missing_routes_file_stops_start_up(tmp_path: Path) -> None:
    result = run_gateway(str(tmp_path / "absent.yaml"))
    assert result.returncode != 0
    assert "absent.yaml" in result.stderr
    assert "Traceback" not in result.stderr


def test_invalid_setting_stops_start_up(tmp_path: Path) -> None:
    result = run_gateway(str(ROOT / "routes.yaml"), TRUSTED_PROXIES="not-a-network")
    assert result.returncode != 0
    assert "TRUSTED_PROXIES" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CLIENT_HEADER_TIMEOUT", "abc"),
        ("CLIENT_BODY_TIMEOUT", "0"),
        ("LOG_LEVEL", "LOUD"),
        ("LOG_FORMAT", "xml"),
        ("RELOAD", "maybe"),
        ("DEBUG", "perhaps"),
        ("ACCESS_LOG", "2"),
        ("RATE_LIMIT_FAILURE_MODE", "sometimes"),
        ("TRUSTED_PROXIES", "10.0.0.0/33"),
        ("MAX_REQUEST_LINE", "big"),
        ("MAX_REQUEST_HEADERS", "10"),
        ("MEMORY_BUDGET", "lots"),
    ],
)
def test_an_invalid_setting_is_one_line_and_no_start(name: str, value: str) -> None:
    for result in (
        run_gateway(str(ROOT / "routes.yaml"), **{name: value}),
        run_manage("check_routes", str(ROOT / "routes.yaml"), **{name: value}),
    ):
        assert result.returncode != 0
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith(f"setting {name}: ") and repr(value) in lines[0]
        assert "Uvicorn running" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    "value", ["true", "false", "1", "0", "yes", "no", "on", "off", "ON", "Off"]
)
def test_booleans_accept_every_usual_spelling(value: str) -> None:
    result = run_manage("check_routes", str(ROOT / "routes.yaml"), RELOAD=value, DEBUG=value)
    assert result.returncode == 0, result.stderr


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_sigterm_lets_a_request_finish(start_gateway: GatewayFactory, stub: Stub) -> None:
    gw = start_gateway(ROUTES, STUB=stub.url)

    async def scenario() -> tuple[int, int | None]:
        async with httpx.AsyncClient(timeout=10) as client:
            pending = asyncio.create_task(client.get(gw.url + "/two-seconds"))
            await asyncio.sleep(0.5)
            gw.process.popen.send_signal(signal.SIGTERM)
            response = await pending
        return response.status_code, await asyncio.to_thread(gw.process.popen.wait, 10)

    status, code = asyncio.run(scenario())
    assert status == 200
    assert code in (0, -signal.SIGTERM)
    assert "Traceback" not in gw.process.output()


def test_bench_comparison_transports_serve_the_same_routes(tmp_path: Path, stub: Stub) -> None:
    """make bench swaps aiohttp's and httpx's pools in (bench/transports); the
    product ships only h1, but the comparison must measure the same gateway."""
    routes = tmp_path / "routes.yaml"
    routes.write_text(ROUTES)
    for transport in ("httpx", "httpx-aiohttp"):
        port = free_port()
        command = gateway_command(port)
        command[command.index("config.asgi:application")] = "bench.transports.gateway:application"
        env = {"ROUTES_FILE": str(routes), "STUB": stub.url, "BENCH_TRANSPORT": transport}
        process = start_process(command, port, tmp_path / f"{transport}.log", env)
        try:
            with httpx.Client(base_url=process.url, timeout=10) as client:
                assert set(client.get("/fan").json()) == {"a", "b"}
                proxied = client.get("/p/echo/z", params={"q": "a%2Fb"}).json()
                assert proxied["raw_path"] == "/echo/z"
                assert "cookie" not in sent_headers(client.get("/echo").json()["e"])
        finally:
            process.stop()


def test_check_routes_command(tmp_path: Path) -> None:
    ok = subprocess.run(
        [PYTHON, "manage.py", "check_routes"], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert ok.returncode == 0
    assert "OK" in ok.stdout
    assert len(ok.stdout.strip().splitlines()) == 1
    started = time.monotonic()
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\n"
        "settings: {timeout: soon}\n"  # 2: bad duration
        "upstreams:\n"
        "  u: {url: 'http://u', timout: 1s}\n"  # 4: unknown key
        "routes:\n"
        "  - name: a\n"
        "    path: /a/{id}\n"
        "    backends: [{upstream: nope, path: /x}]\n"  # 8: unknown upstream
        "  - name: a\n"  # 9: duplicate name
        "    path: /b\n"
        "    backends: [{upstream: u, path: '/y/{idd}'}]\n"  # 11: unknown parameter
    )
    result = subprocess.run(
        [PYTHON, "manage.py", "check_routes", str(bad)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    lines = result.stdout.strip().splitlines()
    assert [line.split(": ")[0] for line in lines] == [f"{bad}:{n}" for n in (2, 4, 8, 9, 11)]
    assert "Traceback" not in result.stdout + result.stderr
    assert time.monotonic() - started < 30


def test_debug_changes_nothing_clients_see(start_gateway: GatewayFactory, stub: Stub) -> None:
    gw = start_gateway(ROUTES, STUB=stub.url, DEBUG="true")
    for response in (gw.get("/nowhere"), gw.request("DELETE", "/echo"), gw.get("/p/%ff")):
        assert response.headers["content-type"] == "application/problem+json"
        assert "Traceback" not in response.text and "<html" not in response.text.lower()


def test_dotenv_file_is_read(stub: Stub, tmp_path: Path) -> None:
    routes = tmp_path / "from-dotenv.yaml"
    routes.write_text(ROUTES.replace("${STUB}", stub.url))
    (tmp_path / ".env").write_text(f"ROUTES_FILE={routes}\nLOG_FORMAT=text\n")
    port = free_port()
    # Nothing but .env may name the routes file or the log format.
    inherited = {k: v for k, v in os.environ.items() if k not in ("ROUTES_FILE", "LOG_FORMAT")}
    popen = subprocess.Popen(
        gateway_command(port),
        cwd=tmp_path,
        env={**inherited, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/echo", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert response.status_code == 200  # the routes file named in .env
    finally:
        popen.send_signal(signal.SIGTERM)
        output = popen.communicate(timeout=15)[0].decode()
    assert " GET /echo 200 " in output  # LOG_FORMAT=text, from .env


def test_reload_off_keeps_the_loaded_routes(start_gateway: GatewayFactory, stub: Stub) -> None:
    gw = start_gateway(ROUTES, STUB=stub.url, RELOAD="false")
    gw.routes_file.write_text(ROUTES.replace("path: /echo\n", "path: /moved\n"))
    time.sleep(2.5)
    assert gw.get("/echo").status_code == 200
    assert gw.get("/moved").status_code == 404
