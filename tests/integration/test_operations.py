"""Live reload, metrics and the access log through the real gateway process
(SPEC 2, 3.9)."""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import re
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import Gateway, GatewayFactory, Stub

ONE = """
version: 1
upstreams: {{stub: {{url: "${{STUB}}"}}}}
routes:
  - {{name: {name}, path: /{name}, backends: [{{upstream: stub, path: /echo/{name}, allow: [path]}}]}}
  - {{name: slow, path: /slow, backends: [{{upstream: stub, path: /delay/2000/slow, allow: [path]}}]}}
"""


def routes(name: str) -> str:
    return ONE.format(name=name)


def wait_for(gw: Gateway, path: str, status: int = 200, within: float = 5.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < within:
        if gw.get(path).status_code == status:
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"{path} did not answer {status} within {within}s")


@pytest.fixture
def gw(start_gateway: GatewayFactory, stub: Stub) -> Gateway:
    return start_gateway(routes("first"), STUB=stub.url, RELOAD="true")


def test_in_place_write(gw: Gateway) -> None:
    gw.routes_file.write_text(routes("second"))
    assert wait_for(gw, "/second") < 5
    assert gw.get("/first").status_code == 404


def test_rename_over_the_file(gw: Gateway) -> None:
    fresh = gw.routes_file.with_suffix(".new")
    fresh.write_text(routes("renamed"))
    os.replace(fresh, gw.routes_file)
    assert wait_for(gw, "/renamed") < 5


def test_kubernetes_configmap_symlink_swap(
    start_gateway: GatewayFactory, stub: Stub, tmp_path: Path
) -> None:
    """The layout kubelet's atomic writer keeps for a ConfigMap volume."""
    mount = tmp_path / "config"
    (mount / "..2026_12_01_v1").mkdir(parents=True)
    (mount / "..2026_12_01_v1" / "routes.yaml").write_text(routes("v1"))
    (mount / "..data").symlink_to("..2026_12_01_v1")
    (mount / "routes.yaml").symlink_to("..data/routes.yaml")
    gw = start_gateway("", STUB=stub.url, RELOAD="true", ROUTES_FILE=str(mount / "routes.yaml"))
    assert gw.get("/v1").status_code == 200
    (mount / "..2026_12_01_v2").mkdir()
    (mount / "..2026_12_01_v2" / "routes.yaml").write_text(routes("v2"))
    (mount / "..data_tmp").symlink_to("..2026_12_01_v2")
    os.replace(mount / "..data_tmp", mount / "..data")
    (mount / "..2026_12_01_v1" / "routes.yaml").unlink()
    (mount / "..2026_12_01_v1").rmdir()
    assert wait_for(gw, "/v2") < 5


def test_invalid_file_keeps_the_old_config_without_a_failed_request(gw: Gateway) -> None:
    failures: list[int] = []
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(base_url=gw.url) as client:
            while not stop.is_set():
                status = client.get("/first").status_code
                if status != 200:
                    failures.append(status)

    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        gw.routes_file.write_text(
            routes("broken").replace("upstream: stub", "upstream: nowhere", 1)
        )
        time.sleep(2.5)
        assert gw.get("/broken").status_code == 404
        log = gw.process.output()
        assert (
            f"{gw.routes_file}:5: route 'broken': backends[0].upstream: unknown upstream 'nowhere'"
            in log
        )
        assert 'gateway_config_reloads_total{result="error"} 1.0' in gw.admin_get("/metrics").text
    finally:
        stop.set()
        thread.join()
    assert failures == []
    gw.routes_file.write_text(routes("fixed"))
    wait_for(gw, "/fixed")
    assert 'gateway_config_reloads_total{result="success"} 1.0' in gw.admin_get("/metrics").text


def test_a_deleted_routes_file_is_an_error_line_and_the_old_config_serves(gw: Gateway) -> None:
    gw.routes_file.unlink()
    time.sleep(2.5)
    assert gw.get("/first").status_code == 200
    errors = [
        json.loads(line)
        for line in gw.process.output().splitlines()
        if line.startswith("{") and '"level":"error"' in line
    ]
    assert len(errors) == 1, gw.process.output()  # said once, not every second
    assert "routes file cannot be read" in errors[0]["message"]
    assert str(gw.routes_file) in errors[0]["message"]
    gw.routes_file.write_text(routes("back"))  # and it comes back
    wait_for(gw, "/back")


def test_requests_in_flight_finish_on_the_old_config(gw: Gateway) -> None:
    async def scenario() -> httpx.Response:
        async with httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
            pending = asyncio.create_task(client.get("/slow"))
            await asyncio.sleep(0.3)
            gw.routes_file.write_text(routes("after").replace("/delay/2000/slow", "/echo/changed"))
            return await pending

    response = asyncio.run(scenario())
    assert response.status_code == 200 and response.json() == {"path": "/delay/2000/slow"}
    wait_for(gw, "/after")
    assert gw.get("/slow").json() == {"path": "/echo/changed"}


METRIC_FAMILIES = (
    "gateway_requests_total",
    "gateway_request_duration_seconds_bucket",
    "gateway_backend_requests_total",
    "gateway_backend_duration_seconds_bucket",
    "gateway_ratelimit_rejected_total",
    "gateway_ratelimit_store_errors_total",
    "gateway_config_reloads_total",
    "gateway_circuit_open",
)

GUARDED = """
version: 1
upstreams:
  stub: {url: "${STUB}", circuit_breaker: {failures: 5, cooldown: 10s}}
routes:
  - {name: limited, path: /limited, rate_limit: {limit: 1, window: 1h}, backends: [{upstream: stub, path: /echo/l, key: l}]}
"""


def sample(text: str, prefix: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix)
    )


def test_metrics_expose_every_family_and_move(start_gateway: GatewayFactory, stub: Stub) -> None:
    gw = start_gateway(GUARDED, STUB=stub.url)
    before = gw.admin_get("/metrics")
    assert before.status_code == 200 and before.headers["content-type"].startswith("text/plain")
    for _ in range(3):
        gw.get("/limited")
    after = gw.admin_get("/metrics").text
    for family in METRIC_FAMILIES:
        assert family in after, family
    assert sample(after, 'gateway_requests_total{method="GET",route="limited",status="200"}') == 1
    assert sample(after, 'gateway_requests_total{method="GET",route="limited",status="429"}') == 2
    assert sample(after, 'gateway_ratelimit_rejected_total{route="limited"}') == 2
    assert (
        sample(after, 'gateway_backend_requests_total{backend="l",outcome="ok",route="limited"}')
        == 1
    )
    assert sample(after, 'gateway_backend_duration_seconds_count{upstream="stub"}') == 1
    assert sample(after, 'gateway_request_duration_seconds_count{route="limited"}') == 3
    assert sample(after, 'gateway_circuit_open{upstream="stub"}') == 0


def logged(gw: Gateway, marker: str) -> list[str]:
    """The gateway's output lines holding `marker` (the access log is flushed within 100 ms)."""
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        found = [line for line in gw.process.output().splitlines() if marker in line]
        if found:
            return found
        time.sleep(0.05)
    return []


def test_access_log_line(start_gateway: GatewayFactory, stub: Stub) -> None:
    gw = start_gateway(GUARDED, STUB=stub.url)
    response = gw.get("/limited", headers={"X-Request-ID": "log-me-1"})
    assert response.status_code == 200
    lines = logged(gw, '"request_id":"log-me-1"')
    entries = [json.loads(line) for line in lines]
    assert len(entries) == 1
    entry = entries[0]
    assert {
        "time",
        "request_id",
        "route",
        "method",
        "path",
        "status",
        "duration_ms",
        "client",
        "identity",
        "completed",
        "backends",
    } <= entry.keys()
    assert (entry["route"], entry["method"], entry["path"], entry["status"], entry["client"]) == (
        "limited",
        "GET",
        "/limited",
        200,
        "127.0.0.1",
    )
    assert entry["completed"] is True and entry["duration_ms"] > 0
    assert entry["backends"][0]["name"] == "l" and entry["backends"][0]["status"] == 200


def test_text_log_format(start_gateway: GatewayFactory, stub: Stub) -> None:
    gw = start_gateway(GUARDED, STUB=stub.url, LOG_FORMAT="text")
    gw.get("/limited", headers={"X-Request-ID": "text-1"})
    (line,) = logged(gw, "request_id=text-1")
    assert " GET /limited 200 " in line and "route=limited" in line and "l=200/" in line


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_every_timestamp_is_utc(start_gateway: GatewayFactory, stub: Stub, fmt: str) -> None:
    """Whatever the machine's zone (Django's default would be America/Chicago)."""
    gw = start_gateway(GUARDED, STUB=stub.url, LOG_FORMAT=fmt, TZ="America/Chicago")
    gw.get("/limited", headers={"X-Request-ID": f"utc-{fmt}"})
    assert logged(gw, f"utc-{fmt}")
    now = datetime.datetime.now(datetime.UTC)
    stamps = re.findall(
        r"\d{4}-\d\d-\d\dT(\d\d):\d\d:\d\d(?:\.\d+)?([+-]\d\d:\d\d|Z)", gw.process.output()
    )
    assert len(stamps) >= 2  # the start-up line and the access line at least
    for hour, zone in stamps:
        assert zone in ("+00:00", "Z")
        assert int(hour) in (now.hour, (now.hour - 1) % 24)
