"""gRPC statuses and grpc-timeout (gateway/pipeline/grpc/status.py)."""

from __future__ import annotations

import pytest

from gateway.pipeline.grpc import status


@pytest.mark.parametrize(
    ("http", "code"),
    [
        (400, 3),
        (401, 16),
        (403, 7),
        (404, 12),
        (413, 8),
        (429, 8),
        (500, 13),
        (502, 14),
        (503, 14),
        (504, 4),
        (451, 2),
    ],
)
def test_the_gateways_statuses(http: int, code: int) -> None:
    assert status.code_for_gateway(http) == code


@pytest.mark.parametrize(("http", "code"), [(404, 12), (503, 14), (429, 14), (418, 2)])
def test_an_upstream_that_answered_plain_http(http: int, code: int) -> None:
    assert status.code_for_upstream_http(http) == code


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (b"100m", 0.1),
        (b"5S", 5.0),
        (b"2M", 120.0),
        (b"1H", 3600.0),
        (b"250u", 0.00025),
        (b"7n", 7e-9),
    ],
)
def test_grpc_timeout(value: bytes, seconds: float) -> None:
    assert status.grpc_timeout(value) == pytest.approx(seconds)


@pytest.mark.parametrize("value", [None, b"", b"5", b"S", b"123456789S", b"-1S", b"1.5S", b"5s"])
def test_a_malformed_grpc_timeout_is_ignored(value: bytes | None) -> None:
    assert status.grpc_timeout(value) is None


def test_messages_are_percent_encoded() -> None:
    trailers = status.status_trailers(3, "bad: é\r\nx")
    assert trailers == [(b"grpc-status", b"3"), (b"grpc-message", b"bad: %C3%A9%0D%0Ax")]
    assert status.status_trailers(0) == [(b"grpc-status", b"0")]
