"""An upstream's TLS contexts and their rotation (gateway/upstream/tls.py)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from gateway.routes.model import UpstreamTls
from gateway.upstream import tls
from gateway.upstream.tls import TlsSource, handshake_reason, tls_source
from tests.certs import Authority


def test_a_changed_file_makes_a_new_context_and_a_broken_one_keeps_the_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    authority = Authority(tmp_path / "pki", name="ca")
    mounted = tmp_path / "ca.pem"
    mounted.write_bytes(authority.cert.read_bytes())
    source = TlsSource(UpstreamTls(ca=str(mounted), server_name="users.internal"))
    clock = [100.0]
    monkeypatch.setattr("gateway.upstream.tls.time.monotonic", lambda: clock[0])
    first = source.context()
    assert source.context() is first  # within RECHECK_SECONDS: not even a stat
    clock[0] += tls.RECHECK_SECONDS
    assert source.context() is first  # checked: unchanged
    other = Authority(tmp_path / "other", name="other")
    mounted.write_bytes(other.cert.read_bytes())
    clock[0] += tls.RECHECK_SECONDS
    second = source.context()
    assert second is not first
    mounted.write_text("broken\n")
    clock[0] += tls.RECHECK_SECONDS
    assert source.context() is second  # the last good one stays
    assert source.server_name("10.0.0.7") == "users.internal"


def test_the_first_context_must_load(tmp_path: Path) -> None:
    with pytest.raises((OSError, ssl.SSLError)):
        TlsSource(UpstreamTls(ca=str(tmp_path / "missing.pem"))).context()


def test_one_source_per_configuration() -> None:
    config = UpstreamTls(verify=False)
    assert tls_source(config) is tls_source(UpstreamTls(verify=False))
    context = tls_source(config).context()
    assert context.verify_mode == ssl.CERT_NONE and not context.check_hostname


def test_handshake_reasons() -> None:
    failed = ssl.SSLCertVerificationError(1, "certificate verify failed")
    failed.verify_message = "certificate has expired"
    assert handshake_reason(failed) == "certificate verification failed: certificate has expired"
    assert handshake_reason(ConnectionResetError("reset")) == "reset"
