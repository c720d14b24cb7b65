"""Streamed proxy answers (SSE, long polls), credentials in the query string,
and draining on SIGTERM, through the real gateway process (SPEC 3.11, 3.9)."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from typing import Any

import httpx
import jwt
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.integration.conftest import (
    PYTHON,
    Gateway,
    GatewayFactory,
    Stub,
    free_port,
    start_process,
)

SECRET = "a-test-secret-that-is-long-enough-for-hs256"
ROUTES = """
version: 1
upstreams:
  live: {url: "${LIVE}", timeout: 500ms}
  stub: {url: "${STUB}", timeout: 2s}
auth:
  keys:
    type: api_key
    query_param: access_token
    keys: [{id: alice, key: alice-key}]
  tokens:
    type: jwt
    algorithms: [HS256]
    secret: "${SECRET}"
    query_param: token
routes:
  - name: events
    path: /events/{rest:path}
    timeout: 1s
    proxy: {upstream: live, path: "/sse/{rest}", idle_timeout: 800ms}
  - name: default-idle
    path: /plain-events/{rest:path}
    proxy: {upstream: live, path: "/sse/{rest}"}
  - name: poll
    path: /poll/{ms}
    timeout: 1h
    proxy: {upstream: live, path: "/hang/{ms}"}
  - name: secure-events
    path: /secure/{rest:path}
    auth: [keys, tokens]
    proxy: {upstream: live, path: "/sse/{rest}", idle_timeout: 5s}
  - name: secure-echo
    path: /secure-echo/{rest:path}
    auth: keys
    proxy: {upstream: stub, path: "/echo/{rest}"}
  - name: secure-aggregate
    path: /secure-agg
    auth: keys
    backends:
      - {upstream: stub, path: /echo/agg, query: {seen: "{query.access_token}", x: "{query.x}"}}
  - name: public-echo
    path: /public/{rest:path}
    proxy: {upstream: stub, path: "/echo/{rest}"}
  - name: chat
    path: /chat
    websocket: {upstream: live, path: /ws/echo/chat}
"""


@pytest.fixture(scope="module")
def gw(start_gateway: GatewayFactory, live: Stub, stub: Stub) -> Gateway:
    return start_gateway(ROUTES, LIVE=live.url, STUB=stub.url, SECRET=SECRET)


def read_events(
    gw: Gateway, path: str, seconds: float, **kwargs: object
) -> tuple[httpx.Response, list[tuple[dict[str, Any], float]], Exception | None]:
    """Read an event stream for up to `seconds`: the response, each event's
    data with the time it arrived, and the error that ended it (if any)."""
    events: list[tuple[dict[str, Any], float]] = []
    error: Exception | None = None
    deadline = time.time() + seconds
    with httpx.stream("GET", gw.url + path, timeout=10, **kwargs) as response:  # type: ignore[arg-type]
        try:
            for line in response.iter_lines():
                if line.startswith("data: "):
                    events.append((json.loads(line[6:]), time.time()))
                if time.time() > deadline:
                    break
        except httpx.HTTPError as exc:
            error = exc
    return response, events, error


# --- streamed proxy answers ---------------------------------------------------------
def test_events_arrive_as_they_are_sent_for_longer_than_any_timeout(gw: Gateway) -> None:
    """Route timeout 1 s, upstream timeout 500 ms: neither cuts a stream that
    talks every 200 ms; each event reaches the client as it is sent."""
    response, events, error = read_events(gw, "/events/every/200", 2.2)
    assert error is None
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    assert "content-length" not in response.headers
    assert len(events) >= 9
    assert [data["n"] for data, _ in events] == list(range(1, len(events) + 1))
    delays = sorted(arrived - data["sent"] for data, arrived in events)
    assert delays[-1] < 0.15, delays


def test_the_upstreams_own_cache_control_stays(gw: Gateway) -> None:
    response, events, _ = read_events(gw, "/events/own-cache", 2)
    assert response.headers["cache-control"] == "private, max-age=5"
    assert response.headers["x-accel-buffering"] == "no"
    assert len(events) == 3


def test_silence_past_idle_timeout_ends_the_stream(gw: Gateway) -> None:
    started = time.time()
    _, events, error = read_events(gw, "/events/quiet/2/3000", 6)
    assert [data["n"] for data, _ in events] == [1, 2]
    assert error is not None  # cut, not ended: the client knows to reconnect
    assert 0.7 < time.time() - started - 0.1 < 2.5
    _, events, error = read_events(gw, "/events/quiet/2/500", 6)  # a pause under 800 ms
    assert error is None and len(events) == 5
    time.sleep(0.2)
    output = gw.process.output()
    # An expected end, said once by the gateway at INFO: not a uvicorn error.
    assert "ASGI callable returned without completing response" not in output
    cut = [json.loads(line) for line in _json_lines(output) if "(idle_timeout)" in line]
    assert cut and cut[0]["level"] == "info" and cut[0]["route"] == "events"


def test_without_idle_timeout_the_upstreams_timeout_bounds_the_silence(gw: Gateway) -> None:
    _, events, error = read_events(gw, "/plain-events/quiet/1/2000", 6)
    assert len(events) == 1 and error is not None
    _, events, error = read_events(gw, "/plain-events/quiet/1/300", 6)
    assert error is None and len(events) == 3


def test_the_route_timeout_bounds_only_the_wait_for_headers(gw: Gateway) -> None:
    """A long poll: the route allows an hour; each attempt is still bounded by
    the upstream's timeout (500 ms) up to the response headers."""
    assert gw.get("/poll/300").json() == {"waited_ms": 300}
    started = time.monotonic()
    slow = gw.get("/poll/2000")
    assert slow.status_code == 504
    assert time.monotonic() - started < 1.5


def test_a_client_leaving_closes_the_upstream_at_once(gw: Gateway, live: Stub) -> None:
    live.reset()
    with httpx.stream("GET", gw.url + "/events/every/300", timeout=10) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                break
        left = time.time()
    deadline = time.monotonic() + 3
    while not live.stats()["sse_disconnects"] and time.monotonic() < deadline:
        time.sleep(0.02)
    (seen,) = live.stats()["sse_disconnects"]
    assert seen - left < 0.3  # not the next event (300 ms later), not the idle timeout


# --- credentials in the query string -----------------------------------------------------
def test_query_credentials_authenticate_and_never_reach_the_upstream(gw: Gateway) -> None:
    echoed = gw.get("/secure-echo/a?x=1&access_token=alice-key&y=2").json()
    assert echoed["query"] == "x=1&y=2"
    assert gw.get("/secure-echo/a?x=1").status_code == 401
    assert gw.get("/secure-echo/a?access_token=wrong").status_code == 401
    # templates read the query without it
    body = gw.get("/secure-agg?access_token=alice-key&x=7").json()
    assert body["query"] == "x=7"  # {query.access_token} is absent: its parameter is left out


def test_a_token_in_the_query_works_for_event_streams(gw: Gateway) -> None:
    token = jwt.encode({"sub": "sam", "exp": int(time.time()) + 60}, SECRET, algorithm="HS256")
    response, events, _ = read_events(gw, f"/secure/every/100?token={token}", 0.5)
    assert response.status_code == 200 and events
    response, events, _ = read_events(gw, "/secure/every/100?access_token=alice-key", 0.5)
    assert response.status_code == 200 and events


def test_the_header_wins_over_the_query(gw: Gateway) -> None:
    response = gw.get("/secure-echo/a?access_token=alice-key", headers={"X-API-Key": "not-a-key"})
    assert response.status_code == 401


def _json_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("{")]


def test_query_credentials_are_masked_in_the_access_log(gw: Gateway) -> None:
    gw.get("/secure-echo/masked?access_token=alice-key&z=3", headers={"X-Request-ID": "mask-1"})
    gw.get("/public/masked?access_token=not-consumed-here", headers={"X-Request-ID": "mask-2"})
    time.sleep(0.3)
    lines = {
        entry["request_id"]: entry
        for entry in map(json.loads, _json_lines(gw.process.output()))
        if entry.get("request_id") in ("mask-1", "mask-2")
    }
    assert lines["mask-1"]["path"] == "/secure-echo/masked?access_token=***&z=3"
    assert lines["mask-2"]["path"] == "/public/masked?access_token=***"
    assert "alice-key" not in gw.process.output()
    assert "not-consumed-here" not in gw.process.output()
    assert "alice-key" not in gw.admin_get("/metrics").text


@pytest.mark.parametrize("flags", [[], ["--log-level", "trace"]])
def test_uvicorns_own_log_lines_never_show_a_credential(
    live: Stub, stub: Stub, tmp_path_factory: pytest.TempPathFactory, flags: list[str]
) -> None:
    """Started the way a user might: no flags (or everything uvicorn can
    print: its trace level). uvicorn's access log is off (the gateway writes
    its own); its WebSocket lines are masked."""
    directory = tmp_path_factory.mktemp("uvicorn-logs")
    (directory / "routes.yaml").write_text(
        ROUTES.replace("${LIVE}", live.url)
        .replace("${STUB}", stub.url)
        .replace("${SECRET}", SECRET)
    )
    port = free_port()
    process = start_process(
        [PYTHON, "-m", "uvicorn", "config.asgi:application", "--port", str(port), *flags],
        port,
        directory / "gateway.log",
        {"ROUTES_FILE": str(directory / "routes.yaml"), "RELOAD": "false"},
    )
    try:
        base = f"http://127.0.0.1:{port}"
        answer = httpx.get(base + "/secure-echo/a?access_token=alice-key")
        assert "server" not in answer.headers  # no `server: uvicorn`, whatever the flags
        httpx.get(base + "/public/a?access_token=public-secret")
        asyncio.run(_websocket_with_query(f"ws://127.0.0.1:{port}/chat?token=ws-secret"))
        time.sleep(0.3)
    finally:
        process.stop()
    output = process.output()
    assert '"GET /public/a' not in output  # no uvicorn access line: the gateway's only
    assert '"path":"/public/a?access_token=***"' in output
    assert '"WebSocket /chat?token=***" [accepted]' in output
    for secret in ("alice-key", "public-secret", "ws-secret"):
        assert secret not in output
    if flags:
        assert "HTTP connection made" in output  # uvicorn's trace lines are there
        assert " - ASGI [" not in output  # but not its message log, which prints scopes


async def _websocket_with_query(url: str) -> None:
    async with connect(url) as ws:
        await ws.send("x")
        await ws.recv()


# --- draining ----------------------------------------------------------------------
def test_sigterm_closes_websockets_with_1012_and_ends_streams(
    start_gateway: GatewayFactory, live: Stub, stub: Stub
) -> None:
    gateway = start_gateway(ROUTES, LIVE=live.url, STUB=stub.url, SECRET=SECRET)
    live.reset()
    outcome = asyncio.run(_drain(gateway))
    assert outcome["websocket"] == 1012
    assert outcome["stream_error"] is None  # the event stream ended cleanly
    assert outcome["events"] >= 1
    assert outcome["exit"] in (0, -signal.SIGTERM)
    assert outcome["seconds"] < 5
    assert [1001, "service restart"] in live.stats()["ws_closes"]


async def _drain(gateway: Gateway) -> dict[str, Any]:
    ws = await connect("ws://" + gateway.url.removeprefix("http://") + "/chat")
    await ws.send("x")
    await ws.recv()
    result: dict[str, object] = {"events": 0, "stream_error": None}

    async def stream() -> None:
        try:
            async with (
                httpx.AsyncClient(timeout=10) as client,
                client.stream("GET", gateway.url + "/events/every/200") as response,
            ):
                async for line in response.aiter_lines():
                    if line.startswith("data: "):
                        result["events"] = int(result["events"]) + 1  # type: ignore[call-overload]
        except httpx.HTTPError as exc:
            result["stream_error"] = exc

    reading = asyncio.create_task(stream())
    await asyncio.sleep(0.5)
    started = time.monotonic()
    gateway.process.popen.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(ws.recv(), 5)
    except ConnectionClosed as exc:
        result["websocket"] = exc.rcvd.code if exc.rcvd else None
    await asyncio.wait_for(reading, 5)
    try:
        result["exit"] = await asyncio.to_thread(gateway.process.popen.wait, 10)
    except subprocess.TimeoutExpired:
        result["exit"] = None
    result["seconds"] = time.monotonic() - started
    return result
