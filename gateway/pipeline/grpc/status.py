"""gRPC statuses (SPEC 3.18): what a refusal or a failure of the gateway
answers on a `grpc` route, and `grpc-timeout`.

A call the gateway refuses (auth, plans, limits, quotas, `ip`, a hook) or
cannot complete (upstream down, circuit open, deadline) is answered as gRPC,
never as problem+json: HTTP 200, the status and message in trailers (native
gRPC: a head, then trailers; gRPC-Web: in the head, as the spec allows).
The gateway's HTTP status picks the code; what the problem body would have
said is the message.
"""

from __future__ import annotations

import re
from urllib.parse import quote

__all__ = [
    "DEADLINE_EXCEEDED",
    "OK",
    "UNAVAILABLE",
    "UNKNOWN",
    "code_for_gateway",
    "code_for_upstream_http",
    "encode_message",
    "grpc_timeout",
    "status_trailers",
]

OK, UNKNOWN, INVALID_ARGUMENT, DEADLINE_EXCEEDED = 0, 2, 3, 4
PERMISSION_DENIED, RESOURCE_EXHAUSTED, UNIMPLEMENTED, INTERNAL = 7, 8, 12, 13
UNAVAILABLE, UNAUTHENTICATED = 14, 16

# The gateway's own answers (SPEC 3.18's table, then what is left).
_GATEWAY = {
    400: INVALID_ARGUMENT,
    401: UNAUTHENTICATED,
    403: PERMISSION_DENIED,
    404: UNIMPLEMENTED,
    405: UNIMPLEMENTED,
    408: DEADLINE_EXCEEDED,
    413: RESOURCE_EXHAUSTED,
    415: INVALID_ARGUMENT,
    429: RESOURCE_EXHAUSTED,
    500: INTERNAL,
    502: UNAVAILABLE,
    503: UNAVAILABLE,
    504: DEADLINE_EXCEEDED,
}
# An upstream that answered plain HTTP, not gRPC (gRPC's own HTTP mapping).
_UPSTREAM = {
    400: INTERNAL,
    401: UNAUTHENTICATED,
    403: PERMISSION_DENIED,
    404: UNIMPLEMENTED,
    429: UNAVAILABLE,
    502: UNAVAILABLE,
    503: UNAVAILABLE,
    504: UNAVAILABLE,
}
_TIMEOUT = re.compile(rb"(\d{1,8})([HMSmun])")
_UNITS = {b"H": 3600.0, b"M": 60.0, b"S": 1.0, b"m": 1e-3, b"u": 1e-6, b"n": 1e-9}


def code_for_gateway(http_status: int) -> int:
    return _GATEWAY.get(http_status, UNKNOWN if http_status < 500 else INTERNAL)


def code_for_upstream_http(http_status: int) -> int:
    return _UPSTREAM.get(http_status, UNKNOWN)


def encode_message(message: str) -> bytes:
    """grpc-message is percent-encoded UTF-8 (gRPC over HTTP/2, "Responses")."""
    return quote(message, safe=" !\"#$&'()*+,-./:;<=>?@[\\]^_`{|}~").encode("ascii")


def status_trailers(code: int, message: str = "") -> list[tuple[bytes, bytes]]:
    trailers = [(b"grpc-status", str(code).encode())]
    if message:
        trailers.append((b"grpc-message", encode_message(message)))
    return trailers


def grpc_timeout(value: bytes | None) -> float | None:
    """Seconds from a `grpc-timeout` header (`100m`, `5S`); None when absent
    or malformed (a malformed one is ignored: the route timeout stands)."""
    if value is None:
        return None
    match = _TIMEOUT.fullmatch(value.strip())
    if match is None:
        return None
    return int(match.group(1)) * _UNITS[match.group(2)]
