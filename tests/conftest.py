"""Shared test helpers and fixtures: inline routes files, free ports, and a
redis-server of the test's own."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.envelope import Caller, Envelope
from gateway.registry import parse_route_table
from gateway.router import Match
from gateway.routes import RouteTable
from tests.processes import PYTHON, Stub, start_process


def table(yaml_text: str) -> RouteTable:
    """Parse a routes file written inline (dedented)."""
    return parse_route_table(textwrap.dedent(yaml_text))


def envelope(
    route: str | None = None, *, identity: str | None = None, provider: str = "keys", **fields: Any
) -> Envelope:
    """An envelope as the handler would build it, matched to a route of that
    name (or to none), with `fields` set (and, with `identity`, what auth
    would have said)."""
    found = None
    if route is not None:
        routes = table(
            f"""
            version: 1
            upstreams: {{u: {{url: "http://u"}}}}
            routes: [{{name: {route}, path: /{route}, backends: [{{upstream: u, path: /x}}]}}]
            """
        ).routes
        found = Match(routes[0], {}, {})
    made = Envelope(
        found=found,
        request_id="r-1",
        client="192.0.2.9",
        forwarded_for="192.0.2.9",
        forwarded_proto="http",
        forwarded_host="h",
    )
    for name, value in fields.items():
        setattr(made, name, value)
    if identity is not None:
        made.caller = Caller(identity, provider)
    return made


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def dead_port() -> Iterator[int]:
    """A port that refuses connections at once: bound by this process and
    never listened on, so no other process can take it meanwhile."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])


class RedisServer:
    """A redis-server of the test's own, on a free port; `kill()` and `start()`
    again on the same port to test what happens while Redis is gone. With a
    `password` it requires one; with `tls` (a CA and a server certificate) it
    speaks TLS only; with `persist` it keeps an append-only file in its
    directory, so a restart keeps what was written."""

    def __init__(
        self,
        directory: Path,
        *,
        password: str = "",
        tls: tuple[Path, Path, Path] | None = None,  # (CA, certificate, key)
        persist: bool = False,
    ) -> None:
        self.port = free_port()
        self.directory = directory
        self.password = password
        self.tls = tls
        self.persist = persist
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        userinfo = f":{self.password}@" if self.password else ""
        if self.tls is not None:
            return f"rediss://{userinfo}127.0.0.1:{self.port}/0?ssl_ca_certs={self.tls[0]}"
        return f"redis://{userinfo}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail(
                "these tests need redis-server on PATH (Debian: apt-get install redis-server)"
            )
        args = [binary, "--bind", "127.0.0.1", "--save", "", "--dir", str(self.directory)]
        args += (
            ["--appendonly", "yes", "--appendfsync", "always"]
            if self.persist
            else [
                "--appendonly",
                "no",
            ]
        )
        if self.password:
            args += ["--requirepass", self.password]
        if self.tls is not None:
            ca, cert, key = self.tls
            args += ["--port", "0", "--tls-port", str(self.port), "--tls-auth-clients", "no"]
            args += ["--tls-ca-cert-file", str(ca), "--tls-cert-file", str(cert)]
            args += ["--tls-key-file", str(key)]
        else:
            args += ["--port", str(self.port)]
        self.popen = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.ping():
                return
            time.sleep(0.02)
        self.kill()
        raise RuntimeError("redis-server did not start")

    def ping(self) -> bool:
        """Is it up (it answers, even if only to ask for the password)?"""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as raw:
                if self.tls is None:
                    raw.sendall(b"PING\r\n")
                    return raw.recv(16).startswith((b"+PONG", b"-NOAUTH"))
                context = ssl.create_default_context(cafile=str(self.tls[0]))
                with context.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
                    sock.sendall(b"PING\r\n")
                    return sock.recv(16).startswith((b"+PONG", b"-NOAUTH"))
        except OSError:
            return False

    def kill(self) -> None:
        if self.popen is not None:
            self.popen.kill()
            self.popen.wait()
            self.popen = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.kill()


@pytest.fixture(scope="module")
def shared_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.kill()


@pytest.fixture(scope="module")
def stub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stub]:
    port = free_port()
    log = tmp_path_factory.mktemp("stub") / "stub.log"
    process = start_process(
        [PYTHON, "-m", "tests.integration.stub", "--port", str(port)],
        port,
        log,
        ready_path="/_stats",
    )
    yield Stub(process)
    process.stop()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stub]:
    """tests/integration/livestub.py: WebSockets and event streams."""
    port = free_port()
    log = tmp_path_factory.mktemp("live") / "live.log"
    process = start_process(
        [PYTHON, "-m", "tests.integration.livestub", "--port", str(port)],
        port,
        log,
        ready_path="/_stats",
    )
    yield Stub(process)
    process.stop()
