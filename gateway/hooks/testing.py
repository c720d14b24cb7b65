"""Build what a hook receives, without a server: for hook authors' tests.

    from gateway.hooks.testing import request_context

    async def test_tenant_header() -> None:
        ctx = request_context(claims={"tenant": "acme"})
        await require_tenant(ctx)
        assert ctx.headers_set == {"x-tenant": "acme"}

Every argument is optional; headers are given in any case and stored lower case.

This module is also a pytest plugin, registered by the gateway's package (an
entry point): wherever the gateway is installed, pytest runs `async def`
tests on an event loop of their own, with no asyncio plugin or configuration
in the hooks package. (A test that pytest-asyncio handles, marked or in its
auto mode, is left to it.)
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from gateway.hooks import (
    BackendCall,
    BackendOutcome,
    Request,
    RequestContext,
    ResponseContext,
)

__all__ = [
    "backend_call",
    "make_request",
    "noop",
    "outcome",
    "pytest_pyfunc_call",
    "request_context",
    "response_context",
]


async def noop(context: object) -> None:
    """A hook that does nothing, at any stage: a placeholder in a routes file
    being written (and what the schema's examples name)."""
    return


def make_request(
    method: str = "GET",
    path: str = "/",
    *,
    route: str = "test-route",
    params: Mapping[str, str] | None = None,
    query: Mapping[str, str] | str | None = None,
    headers: Mapping[str, str] | None = None,
    identity: str | None = None,
    claims: Mapping[str, Any] | None = None,
    request_id: str = "test-request",
) -> Request:
    """A Request as the gateway would hand it over. `query` is a mapping or a
    query string."""
    if isinstance(query, str):
        query_string = query
        pairs = parse_qsl(query, keep_blank_values=True)
    else:
        pairs = list((query or {}).items())
        query_string = urlencode(pairs, quote_via=quote)
    first: dict[str, str] = {}
    for name, value in pairs:
        first.setdefault(name, value)
    # Read-only, as the gateway hands them over.
    return Request(
        method=method,
        path=path,
        route=route,
        params=MappingProxyType(dict(params or {})),
        query=MappingProxyType(first),
        query_string=query_string,
        headers=MappingProxyType({k.lower(): v for k, v in (headers or {}).items()}),
        identity=identity,
        claims=MappingProxyType(dict(claims or {})),
        request_id=request_id,
    )


def request_context(request: Request | None = None, **kwargs: Any) -> RequestContext:
    """A RequestContext for `request`, or for `make_request(**kwargs)`."""
    return RequestContext(request if request is not None else make_request(**kwargs))


def backend_call(
    backend: str = "backend",
    *,
    request: Request | None = None,
    method: str = "GET",
    path: str = "/",
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
) -> BackendCall:
    """A BackendCall as the gateway renders it before sending."""
    pairs = list(query.items()) if isinstance(query, Mapping) else list(query or ())
    return BackendCall(
        request=request if request is not None else make_request(),
        backend=backend,
        method=method,
        path=path,
        headers=[(k.lower(), v) for k, v in (headers or {}).items()],
        query=pairs,
    )


def outcome(
    name: str,
    *,
    key: str | None = None,
    ok: bool = True,
    status: int | None = 200,
    error: str | None = None,
    required: bool = True,
    duration_ms: float = 1.0,
) -> BackendOutcome:
    """One backend's outcome; `ok=False` with an `error` for a failed one."""
    return BackendOutcome(
        name=name,
        key=key if key is not None else name,
        required=required,
        ok=ok,
        status=status,
        error=error if error is not None or ok else "status",
        duration_ms=duration_ms,
    )


def response_context(
    body: Any,
    *,
    request: Request | None = None,
    outcomes: Iterable[BackendOutcome] = (),
    status: int = 200,
) -> ResponseContext:
    """A ResponseContext around the merged `body`."""
    return ResponseContext(
        request=request if request is not None else make_request(),
        outcomes=tuple(outcomes),
        body=body,
        status=status,
    )


def pytest_pyfunc_call(pyfuncitem: Any) -> bool | None:
    """pytest's hook: run an `async def` test to its end on a fresh event loop.
    Anything else (a plain test, one another plugin already wrapped) is left
    to pytest."""
    function = pyfuncitem.obj
    if not inspect.iscoroutinefunction(function):
        return None
    arguments = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    asyncio.run(function(**arguments))
    return True
