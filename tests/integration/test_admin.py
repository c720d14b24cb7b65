"""The admin listener (SPEC 3.14, first part) through real gateway processes:
its paths, the client port that never serves them, /config with every secret
masked, ADMIN_TOKEN, ADMIN_ADDR=off and an address already in use."""

from __future__ import annotations

import hashlib
import socket
import subprocess

import httpx
import pytest

from tests.integration.conftest import (
    PYTHON,
    ROOT,
    Gateway,
    GatewayFactory,
    Stub,
    free_port,
    start_process,
)

ROUTES = """
version: 1
upstreams:
  stub:
    url: "${STUB}"
    headers: {Authorization: "Bearer upstream-token-123", X-Static: plain-but-hidden}
auth:
  keys:
    type: api_key
    keys:
      - {id: alice, key: alice-secret-key}
      - {id: bob, sha256: "${BOB_DIGEST}"}
  tokens: {type: jwt, algorithms: [HS256], secret: jwt-secret-that-is-long-enough-0123456789}
  remote:
    type: jwt
    algorithms: [RS256]
    jwks_url: "https://auth.example/.well-known/jwks.json?token=jwks-token-in-the-url"
routes:
  - name: agg
    path: /agg
    auth: [keys, tokens]
    backends:
      - {upstream: stub, path: /echo/a, key: a}
      - {upstream: stub, path: /echo/b, key: b, query: {key: "${PARTNER_KEY}", v: "2"}}
"""
BOB_DIGEST = hashlib.sha256(b"bob-key").hexdigest()
SECRETS = (
    "upstream-token-123",
    "plain-but-hidden",
    "alice-secret-key",
    BOB_DIGEST,
    "jwt-secret-that-is-long-enough",
    "partner-key-from-the-environment",
    "jwks-token-in-the-url",
)


@pytest.fixture(scope="module")
def gw(start_gateway: GatewayFactory, stub: Stub) -> Gateway:
    return start_gateway(
        ROUTES, STUB=stub.url, BOB_DIGEST=BOB_DIGEST, PARTNER_KEY="partner-key-from-the-environment"
    )


def test_the_admin_listener_serves_metrics_and_the_probes(gw: Gateway) -> None:
    assert gw.admin_get("/healthz").json() == {"status": "ok"}
    assert gw.admin_get("/readyz").json() == {"status": "ready"}
    metrics = gw.admin_get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    assert "gateway_requests_total" in metrics.text
    missing = gw.admin_get("/nope")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert httpx.post(gw.admin_url + "/metrics").status_code == 405


def test_the_client_port_never_serves_admin_paths(gw: Gateway) -> None:
    response = gw.get("/metrics")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert gw.get("/config").status_code == 404  # not an admin path here: no route either
    assert gw.get("/events").status_code == 404
    assert "dashboard" not in gw.get("/", headers={"Accept": "text/html"}).text
    assert gw.get("/healthz").status_code == 200  # the probes answer on both ports


def test_config_shows_the_loaded_routes_with_every_secret_masked(gw: Gateway) -> None:
    response = gw.admin_get("/config")
    assert response.status_code == 200
    for secret in SECRETS:
        assert secret not in response.text, secret
    config = response.json()
    assert config["upstreams"]["stub"]["headers"] == {"authorization": "***", "x-static": "***"}
    keys = config["auth"]["keys"]["keys"]
    assert [k["id"] for k in keys] == ["alice", "bob"]
    assert all(k["digest"] == "***" for k in keys)
    assert config["auth"]["tokens"]["secret"] == "***"
    (route,) = config["routes"]
    assert route["name"] == "agg" and route["path"] == "/agg"
    assert route["kind"]["type"] == "aggregate"
    assert route["kind"]["backends"][0]["path"] == "/echo/a"
    # Values from the environment and URLs' userinfo and query, wherever they are:
    assert route["kind"]["backends"][1]["query"] == [["key", "***"], ["v", "2"]]
    assert config["upstreams"]["stub"]["host"] == "***"  # its URL came from ${STUB}
    remote = config["auth"]["remote"]["jwks_url"]
    assert remote == "https://auth.example/.well-known/jwks.json?***"


@pytest.mark.parametrize("path", ["/config", "/metrics", "/", "/events", "/healthz"])
def test_the_admin_listener_answers_only_its_own_names(gw: Gateway, path: str) -> None:
    """A DNS-rebinding page sends its own name as the Host: it reads nothing."""
    for host in ("attacker.example", "attacker.example:9901", "127.0.0.1.attacker.example", ""):
        refused = httpx.get(gw.admin_url + path, headers={"Host": host}, timeout=10)
        assert refused.status_code == 421, host
        assert refused.headers["content-type"] == "application/problem+json"
        assert "gateway_requests_total" not in refused.text
    for host in ("localhost", f"LOCALHOST:{gw.admin_port}", f"127.0.0.1:{gw.admin_port}"):
        with httpx.stream("GET", gw.admin_url + path, headers={"Host": host}, timeout=10) as ok:
            assert ok.status_code == 200, host


def test_admin_hosts_names_more_hosts(start_gateway: GatewayFactory, stub: Stub) -> None:
    gw = start_gateway(
        ROUTES,
        STUB=stub.url,
        BOB_DIGEST=BOB_DIGEST,
        PARTNER_KEY="x",
        ADMIN_HOSTS="gateway-admin.monitoring.svc, .ops.example",
    )
    for host, status in (
        ("gateway-admin.monitoring.svc:9901", 200),
        ("metrics.ops.example", 200),
        ("ops.example", 200),
        ("attacker.example", 421),
    ):
        assert gw.admin_get("/metrics", headers={"Host": host}).status_code == status, host
    gw.process.stop()


def test_admin_token_guards_everything_but_the_probes(
    start_gateway: GatewayFactory, stub: Stub
) -> None:
    gw = start_gateway(
        ROUTES, STUB=stub.url, BOB_DIGEST=BOB_DIGEST, PARTNER_KEY="x", ADMIN_TOKEN="s3cret-admin"
    )
    for path in ("/metrics", "/config", "/", "/events"):
        refused = gw.admin_get(path)
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        wrong = gw.admin_get(path, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert refused.headers["content-type"] == "application/problem+json"
        headers = {"Authorization": "Bearer s3cret-admin"}
        with httpx.stream("GET", gw.admin_url + path, headers=headers, timeout=30) as ok:
            assert ok.status_code == 200
    # A browser gets the page with its 401: the page asks for the token (no data in it).
    page = gw.admin_get("/", headers={"Accept": "text/html"})
    assert page.status_code == 401 and page.headers["content-type"].startswith("text/html")
    assert 'id="login"' in page.text and "/api" not in page.text
    assert gw.admin_get("/healthz").status_code == 200
    assert gw.admin_get("/readyz").status_code == 200


def test_admin_addr_off_means_no_listener(start_gateway: GatewayFactory, stub: Stub) -> None:
    port = free_port()
    gw = start_gateway(
        ROUTES, STUB=stub.url, BOB_DIGEST=BOB_DIGEST, PARTNER_KEY="x", ADMIN_ADDR="off"
    )
    assert gw.get("/healthz").status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("nonsense", "setting ADMIN_ADDR: expected host:port or off, got 'nonsense'"),
        ("in-use", "setting ADMIN_ADDR: cannot listen on 127.0.0.1:{port}: Address already in use"),
    ],
)
def test_a_bad_admin_address_stops_the_gateway_in_one_line(
    value: str, message: str, tmp_path: pytest.TempPathFactory
) -> None:
    routes = tmp_path / "routes.yaml"  # type: ignore[operator]
    routes.write_text(
        ROUTES.replace("${STUB}", "http://127.0.0.1:9")
        .replace("${BOB_DIGEST}", BOB_DIGEST)
        .replace("${PARTNER_KEY}", "x")
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        address = f"127.0.0.1:{port}" if value == "in-use" else value
        result = subprocess.run(
            [PYTHON, "-m", "uvicorn", "config.asgi:application", "--port", str(free_port())],
            cwd=ROOT,
            env={"ROUTES_FILE": str(routes), "ADMIN_ADDR": address, "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert message.format(port=port) in result.stderr


def test_the_default_admin_address_taken_only_warns(tmp_path: pytest.TempPathFactory) -> None:
    """A second gateway on one machine (ADMIN_ADDR not set) still serves its
    client port; it says why it has no admin listener."""
    routes = tmp_path / "routes.yaml"  # type: ignore[operator]
    routes.write_text(
        ROUTES.replace("${STUB}", "http://127.0.0.1:9")
        .replace("${BOB_DIGEST}", BOB_DIGEST)
        .replace("${PARTNER_KEY}", "x")
    )
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            taken.bind(("127.0.0.1", 9901))
        except OSError:
            pytest.skip("9901 is in use here already")  # the case under test, by someone else
        taken.listen()
        port = free_port()
        process = start_process(
            [PYTHON, "-m", "uvicorn", "config.asgi:application", "--port", str(port)],
            port,
            tmp_path / "gateway.log",  # type: ignore[operator]
            {"ROUTES_FILE": str(routes), "RELOAD": "false"},
        )
        try:
            assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
        finally:
            process.stop()
    assert "admin listener: cannot listen on 127.0.0.1:9901" in process.output()


def test_the_client_port_describes_the_routed_api(gw: Gateway) -> None:
    from openapi_spec_validator import validate

    response = gw.get("/_gateway/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    doc = response.json()
    validate(doc)
    assert list(doc["paths"]) == ["/agg"]
    page = gw.get("/_gateway/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "openapi.json" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # nothing from elsewhere
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "unsafe-inline" not in policy
    assert (
        "frame-ancestors 'none'" in policy and page.headers["x-content-type-options"] == "nosniff"
    )
    script = gw.get("/_gateway/docs/swagger-ui-bundle.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith(
        "text/javascript"
    )
    assert gw.get("/_gateway/docs/LICENSE").status_code == 404  # only the files it serves
    assert gw.get("/_gateway/other").status_code == 404
