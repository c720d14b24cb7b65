"""Real processes on 127.0.0.1: the gateway under uvicorn and stub upstreams.

Every process gets a free port, writes its output to a file under the test's
tmp dir (shown when it fails to start), and is stopped at teardown.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..conftest import RedisServer, free_port

__all__ = ["Gateway", "GatewayFactory", "Process", "RedisServer", "Stub", "free_port"]

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
GATEWAY_ARGS = ["--loop", "uvloop", "--http", "httptools", "--no-access-log", "--no-server-header"]

pytestmark = pytest.mark.integration


@dataclass
class Process:
    popen: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        return self.popen.returncode

    def status(self, key: str) -> int:
        """A /proc/PID/status value in kB (VmRSS, VmHWM) or a count (Threads)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        raise KeyError(key)


def start_process(
    args: list[str],
    port: int,
    log: Path,
    env: dict[str, str] | None = None,
    ready_path: str = "/healthz",
) -> Process:
    with log.open("wb") as handle:  # the child keeps its own copy of the descriptor
        popen = subprocess.Popen(
            args,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    process = Process(popen, port, log)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            raise RuntimeError(f"{args[:4]} exited with {popen.returncode}:\n{process.output()}")
        try:
            httpx.get(process.url + ready_path, timeout=1)
            return process
        except httpx.TransportError:
            time.sleep(0.05)
    process.stop(signal.SIGKILL)
    raise RuntimeError(f"{args[:4]} did not start:\n{process.output()}")


@dataclass
class Stub:
    process: Process

    @property
    def url(self) -> str:
        return self.process.url

    def stats(self) -> dict[str, Any]:
        return httpx.get(self.url + "/_stats").json()

    def reset(self) -> None:
        httpx.get(self.url + "/_reset")

    def count(self, raw_path: str) -> int:
        return int(self.stats()["paths"].get(raw_path, 0))


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


@dataclass
class Gateway:
    process: Process
    routes_file: Path
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.url, timeout=30)

    @property
    def url(self) -> str:
        return self.process.url

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(path, **kwargs)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.request(method, path, **kwargs)


type GatewayFactory = Callable[..., Gateway]


def gateway_command(port: int) -> list[str]:
    return [
        PYTHON,
        "-m",
        "uvicorn",
        "config.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *GATEWAY_ARGS,
    ]


@pytest.fixture(scope="module")
def start_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayFactory]:
    """start_gateway(routes_yaml, **env) -> a running Gateway on a free port."""
    started: list[Gateway] = []

    def start(routes: str, **env: str) -> Gateway:
        directory = tmp_path_factory.mktemp("gateway")
        routes_file = directory / "routes.yaml"
        routes_file.write_text(routes)
        port = free_port()
        environment = {
            "ROUTES_FILE": str(routes_file),
            "LOG_FORMAT": "json",
            "RELOAD": "false",
            **env,
        }
        process = start_process(gateway_command(port), port, directory / "gateway.log", environment)
        gateway = Gateway(process, routes_file)
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        gateway.client.close()
        gateway.process.stop()
