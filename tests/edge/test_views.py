"""Probes (gateway/edge/views.py, SPEC 3.9)."""

from __future__ import annotations

import io
from collections.abc import Iterator

import orjson
import pytest

from gateway import serving
from gateway.assembly import build_gateway
from gateway.edge.intake import open_envelope
from gateway.edge.views import healthz, readyz
from gateway.envelope import GatewayRequest
from gateway.lifecycle import lifecycle
from gateway.runtime import Runtime
from tests.conftest import table


def probe_request() -> GatewayRequest:
    scope = {"type": "http", "method": "GET", "path": "/readyz", "query_string": b"", "headers": []}
    request = GatewayRequest(scope, io.BytesIO())
    request.envelope = open_envelope(scope, serving.current(), ())
    return request


@pytest.fixture
def installed() -> Iterator[None]:
    previous = serving.current()
    routes = table("version: 1\nroutes: []\n")
    serving.install(build_gateway(routes, Runtime(redis_url="", failure_mode="open")))
    yield
    serving.install(previous)
    lifecycle.draining = False


async def test_healthz_always_answers() -> None:
    response = await healthz(probe_request())
    assert response.status_code == 200


async def test_readyz_follows_config_and_draining(installed: None) -> None:
    assert (await readyz(probe_request())).status_code == 200
    lifecycle.draining = True
    draining = await readyz(probe_request())
    assert draining.status_code == 503
    assert orjson.loads(draining.content)["detail"] == "shutting down"  # type: ignore[attr-defined]
    lifecycle.draining = False
    serving.install(None)
    assert (await readyz(probe_request())).status_code == 503
