"""Active health checks (gateway/upstream/health.py), against a real socket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from gateway.routes.model import HealthCheck, Target, Upstream
from gateway.upstream.attempts import UpstreamGuard
from gateway.upstream.clients import create_upstream_client
from gateway.upstream.health import HealthChecks, probe


class Server:
    """Answers every request with `status` (or never, when `hang`)."""

    def __init__(self) -> None:
        self.status = 200
        self.hang = False
        self.paths: list[str] = []
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            self.paths.append(line.split()[1].decode())
            while (await reader.readline()) not in (b"\r\n", b""):
                pass
            if self.hang:
                await asyncio.sleep(10)
            writer.write(f"HTTP/1.1 {self.status} X\r\ncontent-length: 0\r\n\r\n".encode())
            await writer.drain()
        writer.close()


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    state = Server()
    listening = await asyncio.start_server(state.handle, "127.0.0.1", 0)
    state.port = listening.sockets[0].getsockname()[1]
    yield state
    listening.close()


def upstream(port: int, check: HealthCheck | None = None) -> Upstream:
    targets = (Target("up", "127.0.0.1", port), Target("down", "127.0.0.1", 9))
    return Upstream(
        name="u",
        scheme="http",
        host="127.0.0.1",
        port=port,
        base_path="/api",
        targets=targets,
        health_check=check,
    )


async def test_a_probe_passes_on_2xx_and_fails_otherwise(server: Server) -> None:
    u = upstream(server.port)
    client = create_upstream_client(u)
    up, down = UpstreamGuard.for_upstream(u).balancer.states
    assert await probe(client, up, "/api/healthz", 1.0) == (True, "answered 200")
    assert server.paths == ["/api/healthz"]
    server.status = 503
    assert await probe(client, up, "/api/healthz", 1.0) == (False, "answered 503")
    server.hang = True
    assert await probe(client, up, "/api/healthz", 0.05) == (False, "no answer within 0.05 s")
    ok, why = await probe(client, down, "/api/healthz", 1.0)
    assert not ok and "ConnectError" in why
    await client.aclose()


async def test_checks_run_with_the_loop_and_take_a_failing_target_out(server: Server) -> None:
    check = HealthCheck(path="/healthz", interval=0.02, timeout=0.5, unhealthy=2, healthy=1)
    u = upstream(server.port, check)
    client = create_upstream_client(u)
    states = UpstreamGuard.for_upstream(u).balancer.states
    checks = HealthChecks()
    checks.want({u: (client, states)})
    await asyncio.sleep(0.05)
    assert server.paths == []  # not before the serving loop starts them
    checks.start()
    for _ in range(100):
        if not states[1].checks_ok:
            break
        await asyncio.sleep(0.02)
    assert states[0].checks_ok and not states[1].checks_ok
    assert set(server.paths) == {"/healthz"}  # from the root, not under the base path
    checks.want({})  # a reload without checks: the task stops
    await asyncio.sleep(0.05)
    seen = len(server.paths)
    await asyncio.sleep(0.1)
    assert len(server.paths) == seen
    await checks.stop()
    await client.aclose()
