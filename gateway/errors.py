"""Errors the gateway itself produces, and the one place their bodies are built.

    GatewayError                 status, title, type slug; `detail` is safe to show
    ├── BadRequest               400  malformed input (path, parameters, body)
    ├── Unauthorized             401  missing or invalid credentials (WWW-Authenticate)
    ├── Forbidden                403  a scope is missing; an Origin is not allowed
    │   ├── IpDenied             403  the client's address is not allowed (`ip`)
    │   └── PlanForbidden        403  the consumer's plan does not cover the route
    ├── RequestInvalid           400  the request fails its route's `validate` (`errors`)
    ├── UnsupportedMediaType     415  a body schema, and a body that is not JSON
    ├── QuotaExceeded            429  the consumer's plan quota (Retry-After: the period's end)
    ├── NotFound                 404  no route
    ├── MethodNotAllowed         405  the path matches, the method does not (Allow)
    ├── RequestTimeout           408  the body arrived too slowly
    ├── PayloadTooLarge          413  body over the route's max_body_size
    ├── UpgradeRequired          426  a plain request to a WebSocket route
    ├── TooManyRequests          429  the route's rate limit (Retry-After)
    ├── Unavailable              503  a dependency the gateway needs cannot answer
    ├── MemoryBudgetSpent        503  the merged answer would pass MEMORY_BUDGET
    ├── TooManyStreams           503  max_streams or max_streams_per_client reached
    ├── HookFailed               500  a Python hook raised (its traceback is logged)
    ├── HookRejected             4xx/5xx  a request hook rejected the request
    ├── DeadlinePassed           504  the route's deadline passed while hooks ran
    ├── ResponseInvalid          502  an answer fails its route's response schema (enforce)
    └── BackendFailed            502, 503, 504 or an upstream 4xx (`backend_error`)

Anything else raised while answering is a bug: it is logged with its traceback
and answered as a bare 500 problem (never the traceback).

Every error response is `application/problem+json` (RFC 9457) with `type`,
`title`, `status`, `detail`, `request_id`, and `route` / `backend` when known;
an error may add members of its own (`errors` of a request that fails
validation).
Upstream bodies, hosts and Python tracebacks never appear in it.
"""

from __future__ import annotations

from http import HTTPStatus

import orjson
from django.http import HttpResponse

from gateway.types import Failure

__all__ = [
    "BackendFailed",
    "BadRequest",
    "DeadlinePassed",
    "Forbidden",
    "GatewayError",
    "HookFailed",
    "HookRejected",
    "IpDenied",
    "MemoryBudgetSpent",
    "MethodNotAllowed",
    "NotFound",
    "PayloadTooLarge",
    "PlanForbidden",
    "QuotaExceeded",
    "RequestInvalid",
    "RequestTimeout",
    "ResponseInvalid",
    "TooManyRequests",
    "TooManyStreams",
    "Unauthorized",
    "Unavailable",
    "UnsupportedMediaType",
    "UpgradeRequired",
    "backend_error",
    "error_body",
    "problem_body",
    "problem_response",
    "raw_problem_response",
]

PROBLEM_TYPE = "urn:gateway:problem:"


class GatewayError(Exception):
    status = 500
    slug = "internal-error"

    def __init__(
        self,
        detail: str,
        *,
        backend: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.backend = backend
        self.headers = headers or {}
        self.members: dict[str, object] = {}  # more members of the problem body


class BadRequest(GatewayError):
    status = 400
    slug = "bad-request"


class Unauthorized(GatewayError):
    status = 401
    slug = "unauthorized"

    def __init__(self, detail: str, *, challenge: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": challenge})


class Forbidden(GatewayError):
    status = 403
    slug = "forbidden"


class IpDenied(Forbidden):
    slug = "ip-denied"


class PlanForbidden(Forbidden):
    slug = "plan-forbidden"


class RequestInvalid(GatewayError):
    """The request fails its route's `validate`: `errors` says where and why."""

    status = 400
    slug = "request-invalid"

    def __init__(self, detail: str, errors: list[dict[str, str]]) -> None:
        super().__init__(detail)
        self.members["errors"] = errors


class UnsupportedMediaType(GatewayError):
    status = 415
    slug = "unsupported-media-type"


class ResponseInvalid(GatewayError):
    status = 502
    slug = "response-invalid"


class QuotaExceeded(GatewayError):
    status = 429
    slug = "quota-exceeded"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


class TooManyRequests(GatewayError):
    status = 429
    slug = "too-many-requests"

    def __init__(self, retry_after: int) -> None:
        super().__init__("rate limit exceeded", headers={"Retry-After": str(retry_after)})


class Unavailable(GatewayError):
    status = 503
    slug = "service-unavailable"


class UpgradeRequired(GatewayError):
    status = 426
    slug = "upgrade-required"

    def __init__(self) -> None:
        super().__init__(
            "this route accepts WebSocket connections only",
            headers={"Upgrade": "websocket", "Connection": "Upgrade"},
        )


class NotFound(GatewayError):
    status = 404
    slug = "not-found"


class MethodNotAllowed(GatewayError):
    status = 405
    slug = "method-not-allowed"

    def __init__(self, allowed: frozenset[str]) -> None:
        methods = ", ".join(sorted(allowed))
        super().__init__(f"allowed methods: {methods}", headers={"Allow": methods})


class PayloadTooLarge(GatewayError):
    status = 413
    slug = "payload-too-large"


class RequestTimeout(GatewayError):
    status = 408
    slug = "request-timeout"


class MemoryBudgetSpent(GatewayError):
    """Holding the merged answer would pass MEMORY_BUDGET (README "Limits")."""

    status = 503
    slug = "memory-budget"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"Retry-After": "1"})


class TooManyStreams(GatewayError):
    """A long-lived answer (an event stream, a WebSocket) past the upstream's
    `max_streams` or the client's `max_streams_per_client` (SPEC 3.10)."""

    status = 503
    slug = "too-many-streams"
    RETRY_AFTER = 5

    def __init__(self, detail: str, *, backend: str) -> None:
        super().__init__(detail, backend=backend, headers={"Retry-After": str(self.RETRY_AFTER)})


class HookFailed(GatewayError):
    """A hook raised (SPEC 3.12): logged once with its traceback, never sent."""

    status = 500
    slug = "hook-failed"


class HookRejected(GatewayError):
    """A request hook answered the client itself (gateway.hooks.Rejection)."""

    slug = "rejected"

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


class DeadlinePassed(GatewayError):
    """The route's deadline passed before its hooks were done."""

    status = 504
    slug = "route-deadline"


class BackendFailed(GatewayError):
    """A required backend failed, or every backend did; `status` is decided per failure."""

    slug = "backend-failed"

    def __init__(self, status: int, detail: str, *, backend: str, slug: str) -> None:
        super().__init__(detail, backend=backend)
        self.status = status
        self.slug = slug


def problem_body(
    status: int,
    detail: str,
    *,
    request_id: str,
    slug: str | None = None,
    route: str | None = None,
    backend: str | None = None,
    members: dict[str, object] | None = None,
) -> bytes:
    """The only place an error body is built."""
    title = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    body: dict[str, object] = {
        "type": PROBLEM_TYPE + (slug or title.lower().replace(" ", "-")),
        "title": title,
        "status": status,
        "detail": detail,
        "request_id": request_id,
    }
    if route is not None:
        body["route"] = route
    if backend is not None:
        body["backend"] = backend
    if members:
        body.update(members)
    return orjson.dumps(body)


def problem_response(
    status: int,
    detail: str,
    *,
    request_id: str,
    slug: str | None = None,
    route: str | None = None,
    backend: str | None = None,
    headers: dict[str, str] | None = None,
    members: dict[str, object] | None = None,
) -> HttpResponse:
    """A problem as a Django response (see `problem_body`)."""
    content = problem_body(
        status,
        detail,
        request_id=request_id,
        slug=slug,
        route=route,
        backend=backend,
        members=members,
    )
    response = HttpResponse(content, status=status, content_type="application/problem+json")
    response.headers["Content-Length"] = str(len(content))
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def raw_problem_response(status: int, detail: str, *, request_id: str) -> bytes:
    """A whole HTTP/1.1 answer with a problem body that closes the connection,
    for refusals made below Django (the request never became one)."""
    content = problem_body(status, detail, request_id=request_id)
    phrase = HTTPStatus(status).phrase
    return (
        f"HTTP/1.1 {status} {phrase}\r\ncontent-type: application/problem+json\r\n"
        f"content-length: {len(content)}\r\nx-request-id: {request_id}\r\n"
        "connection: close\r\n\r\n"
    ).encode() + content


def error_body(error: GatewayError, *, request_id: str, route: str | None) -> bytes:
    """The problem body of a GatewayError (for answers not built as responses)."""
    return problem_body(
        error.status,
        error.detail,
        request_id=request_id,
        slug=error.slug,
        route=route,
        backend=error.backend,
        members=error.members,
    )


def error_response(error: GatewayError, *, request_id: str, route: str | None) -> HttpResponse:
    return problem_response(
        error.status,
        error.detail,
        request_id=request_id,
        slug=error.slug,
        route=route,
        backend=error.backend,
        headers=error.headers,
        members=error.members,
    )


def backend_error(name: str, failure: Failure, *, status: int, detail: str = "") -> BackendFailed:
    """The problem a failed backend gives its route (named in `backend`)."""
    error = BackendFailed(
        status,
        f"backend {name!r} {detail or failure.phrase}",
        backend=name,
        slug="backend-" + failure.name.lower().replace("_", "-"),
    )
    if failure is Failure.MEMORY:
        error.headers["Retry-After"] = "1"
    return error
