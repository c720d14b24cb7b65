"""Real processes on 127.0.0.1: the gateway under uvicorn and stub upstreams.

Every process gets a free port, writes its output to a file under the test's
tmp dir (shown when it fails to start), and is stopped at teardown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import RedisServer, free_port
from tests.processes import PYTHON, ROOT, Process, Stub, start_process

__all__ = [
    "PYTHON",
    "ROOT",
    "Gateway",
    "GatewayFactory",
    "Process",
    "RedisServer",
    "Stub",
    "free_port",
    "start_process",
    "stubs_named",
]

GATEWAY_ARGS = ["--loop", "uvloop", "--http", "httptools", "--no-access-log", "--no-server-header"]

pytestmark = pytest.mark.integration


@dataclass
class Gateway:
    process: Process
    routes_file: Path
    admin_port: int | None = None  # the admin listener (ADMIN_ADDR), when it has one
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.url, timeout=30)

    @property
    def url(self) -> str:
        return self.process.url

    @property
    def admin_url(self) -> str:
        assert self.admin_port is not None, "started with ADMIN_ADDR=off"
        return f"http://127.0.0.1:{self.admin_port}"

    def admin_get(self, path: str, **kwargs: Any) -> httpx.Response:
        """GET on the admin listener (/metrics, /config, ...)."""
        return httpx.get(self.admin_url + path, timeout=30, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(path, **kwargs)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.request(method, path, **kwargs)


type GatewayFactory = Callable[..., Gateway]


def stubs_named(tmp_path_factory: pytest.TempPathFactory, names: str) -> Iterator[dict[str, Stub]]:
    """A stub upstream process (tests/integration/stub.py) per letter of
    `names`, each on a port of its own, stopped when the generator ends: for
    tests that need upstreams they can tell apart, kill or make fail."""
    directory = tmp_path_factory.mktemp("stubs")
    started: dict[str, Stub] = {}
    try:
        for name in names:
            port = free_port()
            command = [PYTHON, "-m", "tests.integration.stub", "--port", str(port)]
            log = directory / f"stub-{name}.log"
            started[name] = Stub(start_process(command, port, log, ready_path="/_stats"))
        yield started
    finally:
        for stub in started.values():
            stub.process.stop()


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

    def start(routes: str, files: Mapping[str, str] | None = None, **env: str) -> Gateway:
        directory = tmp_path_factory.mktemp("gateway")
        routes_file = directory / "routes.yaml"
        routes_file.write_text(routes)
        for name, text in (files or {}).items():  # beside the routes file (JSON Schemas)
            (directory / name).parent.mkdir(parents=True, exist_ok=True)
            (directory / name).write_text(text)
        port = free_port()
        admin_port = free_port()  # every gateway its own: the default would collide
        environment = {
            "ROUTES_FILE": str(routes_file),
            "LOG_FORMAT": "json",
            "RELOAD": "false",
            "ADMIN_ADDR": f"127.0.0.1:{admin_port}",
            **env,
        }
        process = start_process(gateway_command(port), port, directory / "gateway.log", environment)
        admin = None if environment["ADMIN_ADDR"] == "off" else admin_port
        gateway = Gateway(process, routes_file, admin)
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        gateway.client.close()
        gateway.process.stop()
