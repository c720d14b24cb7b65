"""TLS to upstreams through a real gateway (SPEC 3.17): verification against
a CA of the test's own, mTLS, SNI and the name checked, `verify: false`
only with `insecure: true`, certificate rotation without a restart, the
handshake failure's log line, wss:// alike. Certificates are made at test
time (tests/certs.py)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from tests.certs import Authority, Issued
from tests.conftest import free_port
from tests.integration.conftest import Gateway, GatewayFactory
from tests.processes import PYTHON, Process, manage, start_process


class Pki:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ca = Authority(directory / "ca", name="upstream-ca")
        self.other = Authority(directory / "other", name="other-ca")
        self.server = self.ca.issue("upstream", hosts=("localhost", "127.0.0.1"))
        self.expired = self.ca.issue("stale", hosts=("localhost", "127.0.0.1"), expired=True)
        self.client = self.ca.issue("gateway", client=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


def _tls_stub(
    tmp_path_factory: pytest.TempPathFactory, module: str, issued: Issued, *extra: str
) -> Process:
    port = free_port()
    log = tmp_path_factory.mktemp("tls-stub") / "stub.log"
    command = [PYTHON, "-m", module, "--port", str(port), "--certfile", str(issued.cert)]
    return start_process([*command, "--keyfile", str(issued.key), *extra], port, log, scheme="tcp")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[dict[str, int]]:
    """TLS stubs: plain, requiring a client certificate, with an expired
    certificate, and a WebSocket one."""
    started = {
        "tls": _tls_stub(tmp_path_factory, "tests.integration.stub", pki.server),
        "mtls": _tls_stub(
            tmp_path_factory,
            "tests.integration.stub",
            pki.server,
            "--client-ca",
            str(pki.ca.cert),
        ),
        "expired": _tls_stub(tmp_path_factory, "tests.integration.stub", pki.expired),
        "wss": _tls_stub(tmp_path_factory, "tests.integration.livestub", pki.server),
    }
    yield {name: process.port for name, process in started.items()}
    for process in started.values():
        process.stop()


def routes(upstreams: str) -> str:
    return f"""
version: 1
upstreams:
{upstreams}
routes:
  - name: hello
    path: /{{name}}/hello
    proxy: {{upstream: "{{name}}", path: /echo/hello}}
"""


def gateway(start_gateway: GatewayFactory, pki: Pki, upstreams: dict[str, str]) -> Gateway:
    """A gateway with one route per upstream: /NAME/hello -> NAME's /echo/hello."""
    lines = "\n".join(f"  {name}: {spec}" for name, spec in upstreams.items())
    route_lines = "\n".join(
        f"  - {{name: {name}, path: /{name}/hello, proxy: {{upstream: {name}, path: /echo/hello}}}}"
        for name in upstreams
    )
    text = f"version: 1\nupstreams:\n{lines}\nroutes:\n{route_lines}\n"
    return start_gateway(text, files={}, PKI=str(pki.directory))


def test_verified_against_the_ca_given(
    start_gateway: GatewayFactory, pki: Pki, servers: dict[str, int]
) -> None:
    port = servers["tls"]
    gw = gateway(
        start_gateway,
        pki,
        {
            "good": f'{{url: "https://127.0.0.1:{port}", tls: {{ca: "{pki.ca.cert}"}}}}',
            "system": f'{{url: "https://127.0.0.1:{port}"}}',  # the system CAs: unknown
            "wrongca": f'{{url: "https://127.0.0.1:{port}", tls: {{ca: "{pki.other.cert}"}}}}',
            "named": f'{{url: "https://localhost:{port}", tls: {{ca: "{pki.ca.cert}", server_name: other.example}}}}',
            "sni": f'{{url: "https://127.0.0.1:{port}", tls: {{ca: "{pki.ca.cert}", server_name: localhost}}}}',
            "lax": f'{{url: "https://127.0.0.1:{port}", tls: {{verify: false, insecure: true}}}}',
            "stale": f'{{url: "https://127.0.0.1:{servers["expired"]}", tls: {{ca: "{pki.ca.cert}"}}}}',
        },
    )
    assert gw.get("/good/hello").status_code == 200
    assert gw.get("/sni/hello").status_code == 200  # the name checked is server_name's
    assert gw.get("/lax/hello").status_code == 200  # nothing checked, as asked
    for name, cause in (
        ("system", "unable to get local issuer certificate"),
        ("wrongca", "unable to get local issuer certificate"),
        ("named", "Hostname mismatch"),
        ("stale", "certificate has expired"),
    ):
        answer = gw.get(f"/{name}/hello")
        assert answer.status_code == 502, name
        assert answer.headers["content-type"] == "application/problem+json"
        wait_for_log(gw, f"TLS handshake with upstream {name} ", cause)
    assert "upstream lax: tls verify is off (insecure: true)" in gw.process.output()


def test_a_client_certificate_for_mtls(
    start_gateway: GatewayFactory, pki: Pki, servers: dict[str, int]
) -> None:
    port = servers["mtls"]
    ca = f'ca: "{pki.ca.cert}"'
    gw = gateway(
        start_gateway,
        pki,
        {
            "with": f'{{url: "https://127.0.0.1:{port}", tls: {{{ca}, cert: "{pki.client.cert}", key: "{pki.client.key}"}}}}',
            "without": f'{{url: "https://127.0.0.1:{port}", tls: {{{ca}}}}}',
        },
    )
    assert gw.get("/with/hello").status_code == 200
    assert gw.get("/without/hello").status_code == 502


def test_a_rotated_ca_file_is_used_without_a_restart(
    start_gateway: GatewayFactory, pki: Pki, servers: dict[str, int], tmp_path: Path
) -> None:
    """The mounted CA file changes (a Secret update): within 10 s new
    connections use it, with RELOAD off (nothing but the file is re-read)."""
    mounted = tmp_path / "ca.pem"
    shutil.copy(pki.other.cert, mounted)  # the wrong CA first
    gw = gateway(
        start_gateway,
        pki,
        {"rotated": f'{{url: "https://127.0.0.1:{servers["tls"]}", tls: {{ca: "{mounted}"}}}}'},
    )
    assert gw.get("/rotated/hello").status_code == 502
    shutil.copy(pki.ca.cert, mounted)
    deadline = time.monotonic() + 10
    while (status := gw.get("/rotated/hello").status_code) != 200:
        assert time.monotonic() < deadline, f"still {status} 10 s after the rotation"
        time.sleep(0.5)


async def test_wss_upstreams_use_the_same_tls(
    start_gateway: GatewayFactory, pki: Pki, servers: dict[str, int]
) -> None:
    port = servers["wss"]
    text = f"""
version: 1
upstreams:
  live: {{url: "https://127.0.0.1:{port}", tls: {{ca: "{pki.ca.cert}"}}}}
  unknown: {{url: "https://127.0.0.1:{port}"}}
routes:
  - {{name: echo, path: /echo, websocket: {{upstream: live, path: /ws/echo}}}}
  - {{name: refused, path: /refused, websocket: {{upstream: unknown, path: /ws/echo}}}}
"""
    gw = start_gateway(text)
    base = "ws://" + gw.url.removeprefix("http://")
    async with connect(base + "/echo") as ws:
        await ws.send("over tls")
        assert await ws.recv() == "over tls"
    with pytest.raises(Exception, match="502"):
        async with connect(base + "/refused"):
            pass
    wait_for_log(gw, "TLS handshake with upstream", "unable to get local issuer certificate")


@pytest.mark.parametrize(
    ("tls", "message"),
    [
        ('{ca: "missing.pem"}', "cannot read"),
        ("{verify: false}", "verify: false needs insecure: true beside it"),
        ('{cert: "ca.pem"}', "cert and key go together"),
        ('{ca: "not-a-cert.pem"}', "do not load"),
    ],
)
def test_bad_tls_settings_are_errors_at_their_line(
    tmp_path: Path, pki: Pki, tls: str, message: str
) -> None:
    shutil.copy(pki.ca.cert, tmp_path / "ca.pem")
    (tmp_path / "not-a-cert.pem").write_text("not a certificate\n")
    routes_file = tmp_path / "routes.yaml"
    routes_file.write_text(
        "version: 1\nupstreams:\n  u:\n    url: https://127.0.0.1:1\n"
        f"    tls: {tls}\nroutes:\n  - {{name: r, path: /r, proxy: {{upstream: u, path: /x}}}}\n"
    )
    done = manage("check_routes", str(routes_file))
    out = done.stdout + done.stderr
    assert done.returncode == 1
    assert f"{routes_file}:5:" in out
    assert message in out
    assert "Traceback" not in out


def test_tls_on_a_plain_http_upstream_is_an_error(tmp_path: Path) -> None:
    routes_file = tmp_path / "routes.yaml"
    routes_file.write_text(
        "version: 1\nupstreams:\n  u: {url: 'http://127.0.0.1:1', tls: {verify: true}}\n"
        "routes:\n  - {name: r, path: /r, proxy: {upstream: u, path: /x}}\n"
    )
    done = manage("check_routes", str(routes_file))
    assert done.returncode == 1
    assert "only an https:// upstream speaks TLS" in done.stdout + done.stderr


def wait_for_log(gw: Gateway, *parts: str) -> None:
    deadline = time.monotonic() + 5
    while not any(all(p in line for p in parts) for line in gw.process.output().splitlines()):
        assert time.monotonic() < deadline, f"no log line with {parts}"
        time.sleep(0.1)
