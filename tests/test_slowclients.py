"""The header-read deadline (gateway/slowclients.py); the behaviour through a
real process is in tests/integration/test_resilience.py."""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway.slowclients import guard_header_reads


def test_guard_is_installed_once() -> None:
    assert guard_header_reads(10.0)
    patched = HttpToolsProtocol.connection_made
    assert guard_header_reads(10.0)
    assert HttpToolsProtocol.connection_made is patched
    assert HttpToolsProtocol._gateway_guarded is True  # type: ignore[attr-defined]
