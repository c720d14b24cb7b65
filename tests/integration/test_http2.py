"""HTTP/2 on the client port (SPEC 3.18, HTTP2=on), through the real gateway
process: h2c beside HTTP/1.1, the same routes and policies, the limits, and
the attacks of a hostile client (tests/h2raw.py), each cut off with GOAWAY
while another client keeps its latency."""

from __future__ import annotations

import asyncio
import socket
import ssl
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from hyperframe.frame import DataFrame, GoAwayFrame, HeadersFrame

from tests.certs import Authority
from tests.h2raw import PREFACE, Closed, RawH2
from tests.integration.conftest import Gateway, GatewayFactory, Stub, free_port, start_process
from tests.processes import PYTHON

ROUTES = """
version: 1
settings:
  max_body_size: 4MiB
  forward_headers: [Cookie]
upstreams:
  stub: {url: "${STUB}", timeout: 5s}
auth:
  keys:
    type: api_key
    keys: [{id: alice, key: alice-key}]
routes:
  - name: pass
    path: /p/{rest:path}
    methods: [GET, POST, HEAD]
    proxy: {upstream: stub, path: "/{rest}"}
  - name: private
    path: /private
    auth: keys
    backends: [{upstream: stub, path: /echo/private, key: r, allow: [headers]}]
  - name: limited
    path: /limited
    rate_limit: {limit: 2, window: 1h}
    backends: [{upstream: stub, path: /echo/limited, key: r, allow: [method]}]
  - name: socket
    path: /ws
    websocket: {upstream: stub, path: /ws}
  - name: joined
    path: /joined/{n}
    backends:
      - {upstream: stub, path: "/echo/a/{n}", key: a, allow: [path]}
      - {upstream: stub, path: "/echo/b/{n}", key: b, allow: [path]}
"""
MAX_CONCURRENT_STREAMS, MAX_HEADER_LIST_SIZE, INITIAL_WINDOW_SIZE = 0x3, 0x6, 0x4
ENHANCE_YOUR_CALM, REFUSED_STREAM = 0xB, 0x7


@pytest.fixture(scope="module")
def gw(start_gateway: GatewayFactory, stub: Stub) -> Gateway:
    return start_gateway(
        ROUTES, STUB=stub.url, HTTP2="on", CLIENT_SEND_TIMEOUT="1s", CLIENT_HEADER_TIMEOUT="2s"
    )


@pytest.fixture
def h2(gw: Gateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gw.url, http1=False, http2=True, timeout=30) as client:
        yield client


def port_of(gw: Gateway) -> int:
    return gw.process.port


# --- the same gateway, over HTTP/2 --------------------------------------------


def test_h2c_and_http1_on_one_port(gw: Gateway, h2: httpx.Client) -> None:
    over2 = h2.get("/joined/7")
    over1 = gw.get("/joined/7")
    assert over2.http_version == "HTTP/2" and over1.http_version == "HTTP/1.1"
    assert over2.status_code == over1.status_code == 200
    assert over2.json() == over1.json() == {"a": {"path": "/echo/a/7"}, "b": {"path": "/echo/b/7"}}
    assert over2.headers["x-request-id"]
    assert "server" not in over2.headers


def test_problems_auth_and_limits_hold_over_http2(gw: Gateway, h2: httpx.Client) -> None:
    missing = h2.get("/private")
    assert missing.status_code == 401
    assert missing.headers["content-type"] == "application/problem+json"
    allowed = h2.get("/private", headers={"X-API-Key": "alice-key"})
    assert allowed.status_code == 200
    statuses = [h2.get("/limited").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert h2.get("/nowhere").status_code == 404


def test_request_and_answer_bodies_past_the_windows(h2: httpx.Client) -> None:
    body = b"z" * 1_000_000  # 15 times the initial window each way
    sent = h2.post("/p/echo/upload", content=body)
    assert sent.status_code == 200 and sent.json()["body_size"] == len(body)
    big = h2.get("/p/big/3000000")
    assert big.status_code == 200 and len(big.content) == 3_000_000


def test_forged_identity_and_host_rules_hold(h2: httpx.Client) -> None:
    echoed = h2.get("/p/echo/h", headers={"X-Forwarded-For": "6.6.6.6", "X_Client_Id": "x"})
    headers = {name.lower(): value for name, value in echoed.json()["headers"]}
    assert "x_client_id" not in headers
    assert headers["x-forwarded-for"] == "127.0.0.1"


def test_head_and_cookies(h2: httpx.Client) -> None:
    head = h2.head("/p/big/1000")
    assert head.status_code == 200 and head.content == b""
    cookies = h2.get("/p/echo/c", headers=[("cookie", "a=1"), ("cookie", "b=2")])
    sent = {k.lower(): v for k, v in cookies.json()["headers"]}
    assert sent["cookie"] == "a=1; b=2"


def test_streams_compression_and_body_limits_over_http2(h2: httpx.Client) -> None:
    with h2.stream("GET", "/p/sse/3/100") as events:
        assert events.headers["content-type"].startswith("text/event-stream")
        arrived = []
        for line in events.iter_lines():
            if line.startswith("data:"):
                arrived.append(time.monotonic())
    assert len(arrived) == 3 and arrived[-1] - arrived[0] > 0.15  # relayed as they came
    document = '{"text": "' + "compressible " * 300 + '"}'
    squeezed = h2.get("/p/json", params={"body": document}, headers={"Accept-Encoding": "gzip"})
    assert squeezed.headers["content-encoding"] == "gzip" and squeezed.text == document
    too_big = h2.post("/p/echo/big", content=b"x" * (5 * 1024 * 1024))
    assert too_big.status_code == 413
    assert too_big.headers["content-type"] == "application/problem+json"


def test_websocket_routes_stay_http1(h2: httpx.Client) -> None:
    refused = h2.get("/ws")
    assert refused.status_code == 426  # HTTP/2 has no Upgrade header: the answer drops it


def test_access_log_names_http2(gw: Gateway, h2: httpx.Client) -> None:
    rid = h2.get("/p/echo/logged").headers["x-request-id"]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = [orjson.loads(x) for x in gw.process.output().splitlines() if rid in x]
        entries = [x for x in lines if x.get("request_id") == rid and "status" in x]
        if entries:
            assert entries[0]["status"] == 200
            return
        time.sleep(0.1)
    pytest.fail("no access log line")


# --- what the connection advertises and allows --------------------------------


def test_settings_advertise_the_limits(gw: Gateway) -> None:
    client = RawH2(port_of(gw))
    client.until(lambda f: bool(client.server_settings))
    assert client.server_settings[MAX_CONCURRENT_STREAMS] == 100
    assert client.server_settings[MAX_HEADER_LIST_SIZE] == 64 * 1024
    client.close()


def test_100_concurrent_streams_work_and_the_101st_is_refused(gw: Gateway) -> None:
    client = RawH2(port_of(gw))
    ids = {client.request("/p/delay/1500") for _ in range(100)}
    extra = client.request("/p/delay/1")
    answers = client.answers({*ids, extra}, timeout=30)
    assert answers[extra] == ("reset", REFUSED_STREAM)
    assert all(answers[i] == 200 for i in ids)
    # the connection goes on: a new stream now fits
    again = client.request("/p/echo/after")
    assert client.answers({again}) == {again: 200}
    client.close()


def test_oversized_header_list_is_431_and_long_path_414(gw: Gateway) -> None:
    client = RawH2(port_of(gw))
    big = client.request("/p/echo/x", headers=[(f"x-h{i}", "v" * 1000) for i in range(80)])
    long = client.request("/p/echo/" + "a" * 9000)
    assert client.answers({big, long}) == {big: 431, long: 414}
    ok = client.request("/p/echo/fine")
    assert client.answers({ok}) == {ok: 200}
    client.close()


def test_http1_requests_keep_their_limits(gw: Gateway) -> None:
    with socket.create_connection(("127.0.0.1", port_of(gw)), timeout=5) as sock:
        sock.sendall(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 414")


# --- attacks: each cut off, another client unhurt -----------------------------


class Bystander:
    """Another client, requesting all along on its own HTTP/2 connection."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.times: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Bystander:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, http1=False, http2=True, timeout=10) as client:
            while not self._stop.is_set():
                started = time.perf_counter()
                try:
                    status = client.get("/p/echo/bystander").status_code
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                    continue
                self.times.append(time.perf_counter() - started)
                if status != 200:
                    self.failures.append(str(status))
                time.sleep(0.01)

    def p99(self) -> float:
        return statistics.quantiles(self.times, n=100)[98]


ATTACKERS = iter(range(10, 250))  # each attack from an address of its own: 127.0.0.N


def attacker_address() -> str:
    return f"127.0.0.{next(ATTACKERS)}"


def penalty_lapsed(gw: Gateway, source: str, timeout: float = 10.0) -> float:
    """Seconds until a new HTTP/2 connection from `source` is served again
    (an attacker's address is refused for a while after it is cut off)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        with RawH2(port_of(gw), source=source) as probe:
            stream_id = probe.request("/p/echo/probe")
            try:
                if probe.answers({stream_id}, timeout=5) == {stream_id: 200}:
                    return time.monotonic() - started
            except Closed:
                pass
        time.sleep(0.2)
    raise AssertionError("new HTTP/2 connections stay refused")


def attacked(gw: Gateway, attack: object) -> tuple[GoAwayFrame | None, Bystander]:
    """`attack` from an address of its own, beside a client requesting all
    along from another."""
    client = RawH2(port_of(gw), source=attacker_address())
    with Bystander(gw.url) as bystander:
        time.sleep(0.3)
        attack(client)  # type: ignore[operator]
        goaway = client.goaway(timeout=10)
        time.sleep(0.3)
    client.close()
    assert bystander.failures == []
    assert len(bystander.times) > 10
    assert bystander.p99() < 0.5
    return goaway, bystander


def test_rapid_reset_is_cut_off(gw: Gateway) -> None:
    def rapid_reset(client: RawH2) -> None:
        for _ in range(5000):
            stream_id = client.request("/p/delay/1000")
            if not client.reset(stream_id):
                return

    goaway, _ = attacked(gw, rapid_reset)
    assert goaway is not None and goaway.error_code == ENHANCE_YOUR_CALM


def test_an_attackers_address_is_refused_for_a_while(gw: Gateway) -> None:
    source = attacker_address()
    with RawH2(port_of(gw)) as other:  # opened before: not touched
        with RawH2(port_of(gw), source=source) as client:
            for _ in range(1000):
                if not client.ping():
                    break
            first = client.goaway()
        assert first is not None and first.error_code == ENHANCE_YOUR_CALM
        with RawH2(port_of(gw), source=source) as again:  # refused before anything else
            again.request("/p/echo/refused")
            refused = again.goaway()
        assert refused is not None and refused.error_code == ENHANCE_YOUR_CALM
        stream_id = other.request("/p/echo/other")
        assert other.answers({stream_id}) == {stream_id: 200}
    with httpx.Client(transport=httpx.HTTPTransport(local_address=source)) as http1:
        assert http1.get(gw.url + "/p/echo/http1").status_code == 200  # HTTP/1.1 is not touched
    assert 1.0 < penalty_lapsed(gw, source) < 6.0


def test_continuation_flood_is_cut_off(gw: Gateway) -> None:
    goaway, _ = attacked(gw, lambda client: client.continuation_flood(20_000))
    assert goaway is not None and goaway.error_code != 0


@pytest.mark.parametrize("frame", ["ping", "settings"])
def test_ping_and_settings_floods_are_cut_off(gw: Gateway, frame: str) -> None:
    def flood(client: RawH2) -> None:
        for _ in range(20_000):
            if not getattr(client, frame)():
                return

    goaway, _ = attacked(gw, flood)
    assert goaway is not None and goaway.error_code == ENHANCE_YOUR_CALM


def test_refused_stream_flood_is_cut_off(gw: Gateway) -> None:
    def past_the_limit(client: RawH2) -> None:
        for _ in range(1000):
            client.request("/p/delay/3000")

    goaway, _ = attacked(gw, past_the_limit)
    assert goaway is not None and goaway.error_code == ENHANCE_YOUR_CALM


def test_a_window_held_shut_is_cut_off(gw: Gateway) -> None:
    client = RawH2(
        port_of(gw), settings={INITIAL_WINDOW_SIZE: 0}, credit=False, source=attacker_address()
    )
    stream_id = client.request("/p/big/500000")
    started = time.monotonic()
    frames = client.until(lambda f: isinstance(f, GoAwayFrame), timeout=10)
    assert frames[-1].error_code == ENHANCE_YOUR_CALM  # type: ignore[attr-defined]
    assert time.monotonic() - started < 8  # CLIENT_SEND_TIMEOUT is 1 s here
    assert not any(isinstance(f, DataFrame) and f.data for f in frames)
    assert any(isinstance(f, HeadersFrame) and f.stream_id == stream_id for f in frames)
    client.close()


def test_a_silent_connection_is_closed(gw: Gateway) -> None:
    with RawH2(port_of(gw), preface=False) as client:
        client.write(PREFACE[:10])
        started = time.monotonic()
        with pytest.raises(Closed):
            client.frame(timeout=10)
    assert time.monotonic() - started < 6  # CLIENT_HEADER_TIMEOUT is 2 s here


def test_a_client_reset_cancels_the_upstream_call(gw: Gateway, stub: Stub) -> None:
    client = RawH2(port_of(gw))
    before = stub.stats()["disconnects"]
    stream_id = client.request("/p/hang")
    time.sleep(0.5)
    client.reset(stream_id)
    deadline = time.monotonic() + 5
    while stub.stats()["disconnects"] == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stub.stats()["disconnects"] > before
    again = client.request("/p/echo/after-reset")
    assert client.answers({again}) == {again: 200}
    client.close()


def test_no_traceback_after_the_attacks(gw: Gateway) -> None:
    assert "Traceback" not in gw.process.output()


def test_async_clients_share_one_connection(gw: Gateway) -> None:
    async def many() -> list[int]:
        async with httpx.AsyncClient(base_url=gw.url, http1=False, http2=True) as client:
            replies = await asyncio.gather(*(client.get("/p/delay/300") for _ in range(100)))
        return [r.status_code for r in replies]

    started = time.monotonic()
    assert asyncio.run(many()) == [200] * 100
    assert time.monotonic() - started < 10


# --- other ways in -----------------------------------------------------------


def test_h2_by_alpn_over_tls(tmp_path: Path, stub: Stub) -> None:
    authority = Authority(tmp_path / "ca")
    server = authority.issue("localhost")
    routes = tmp_path / "routes.yaml"
    routes.write_text(ROUTES)
    port = free_port()
    command = [PYTHON, "-m", "uvicorn", "config.asgi:application", "--port", str(port)]
    command += ["--ssl-certfile", str(server.cert), "--ssl-keyfile", str(server.key)]
    env = {"ROUTES_FILE": str(routes), "STUB": stub.url, "HTTP2": "on", "ADMIN_ADDR": "off"}
    process = start_process(command, port, tmp_path / "gw.log", env, scheme="https")
    try:
        verify = ssl.create_default_context(cafile=str(authority.cert))
        url = f"https://localhost:{port}"
        with httpx.Client(base_url=url, http2=True, verify=verify) as client:
            reply = client.get("/joined/1")
        assert reply.http_version == "HTTP/2" and reply.status_code == 200
        with httpx.Client(base_url=url, verify=verify) as client:
            assert client.get("/joined/1").http_version == "HTTP/1.1"
    finally:
        process.stop()


def test_without_http2_the_preface_is_not_served(start_gateway: GatewayFactory, stub: Stub) -> None:
    gw = start_gateway(ROUTES, STUB=stub.url, ADMIN_ADDR="off")
    with RawH2(port_of(gw)) as client, pytest.raises(Closed):
        client.until(lambda f: False, timeout=5)
    assert gw.get("/joined/1").status_code == 200


def test_a_trusted_proxy_is_cut_off_but_never_refused(
    start_gateway: GatewayFactory, stub: Stub
) -> None:
    """An ingress relays many clients on its connections: refusing its address
    would refuse all of them."""
    gw = start_gateway(
        ROUTES, STUB=stub.url, HTTP2="on", TRUSTED_PROXIES="127.0.0.0/8", ADMIN_ADDR="off"
    )
    source = attacker_address()
    with RawH2(port_of(gw), source=source) as client:
        for _ in range(1000):
            if not client.ping():
                break
        goaway = client.goaway()
    assert goaway is not None and goaway.error_code == ENHANCE_YOUR_CALM
    assert penalty_lapsed(gw, source) < 0.5  # served at once
