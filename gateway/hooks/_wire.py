"""For the gateway's own use (gateway/pipeline): how a backend call is handed
to hooks and taken back, and lazily built read-only views. Not part of the
API: hook code imports `gateway.hooks` only."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, cast

from gateway.hooks import BackendCall, BackendOutcome, Request, RequestContext, ResponseContext

__all__ = [
    "LazyMapping",
    "wire_answer",
    "wire_body",
    "wire_call",
    "wire_changes",
    "wire_edits",
    "wire_request",
]

# Contexts are handed over with the request unbuilt: built when a hook reads it.
_UNBUILT = cast(Request, None)


def wire_request(request: Callable[[], Request]) -> RequestContext:
    """A RequestContext whose request is built when a hook first reads it."""
    context = RequestContext(_UNBUILT)
    context._make_request = request
    return context


def wire_call(
    request: Callable[[], Request],
    backend: str,
    method: str,
    path: str,
    headers: list[tuple[bytes, bytes]],
    query: str,
) -> BackendCall:
    """A BackendCall over the call as it will be sent, decoded only if a hook
    looks (made without its constructor: one per backend call)."""
    call = BackendCall.__new__(BackendCall)
    call._set = call._removed = call._request = None
    call._make_request = request
    call.backend, call.method, call.path = backend, method, path
    call._headers = call._query = None
    call._wire_headers, call._wire_query = headers, query
    call._changed = False
    return call


def wire_edits(
    context: RequestContext | ResponseContext,
) -> tuple[Mapping[str, str] | None, frozenset[str] | set[str] | None]:
    """(what request hooks set, what they removed); None for each untouched."""
    return context._set, context._removed


def wire_changes(call: BackendCall) -> tuple[list[tuple[bytes, bytes]], str] | None:
    """What the hooks changed, as it goes on the wire; None when nothing."""
    if not call._changed:
        return None
    headers = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in call._header_list()]
    return headers, call.query_string


def wire_answer(
    request: Callable[[], Request],
    outcomes: Callable[[], tuple[BackendOutcome, ...]],
    body: Any,
    read: Callable[[Any], Any],
) -> ResponseContext:
    """A ResponseContext over the merged answer as it will be serialised
    (spliced bodies included): `read(body)` builds its Python objects the
    first time a hook reads `body`."""
    context = ResponseContext(request=_UNBUILT, outcomes=outcomes, body=body)
    context._make_request = request
    context._unread = lambda: read(body)
    return context


def wire_body(context: ResponseContext) -> Any:
    """The body to send: as merged, unless a hook read or replaced it."""
    return context._body


class LazyMapping(Mapping[str, str]):
    """A read-only mapping built from raw data on first use."""

    __slots__ = ("_build", "_data")

    def __init__(self, build: Callable[[], dict[str, str]]) -> None:
        self._build: Callable[[], dict[str, str]] | None = build
        self._data: dict[str, str] = {}

    def _load(self) -> dict[str, str]:
        if self._build is not None:
            self._data, self._build = self._build(), None
        return self._data

    def __getitem__(self, key: str) -> str:
        return self._load()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())

    def __repr__(self) -> str:
        return repr(self._load())
