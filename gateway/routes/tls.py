"""An upstream's `tls:` as an SSL context (the loader builds one to check the
files when the routes file loads; gateway/upstream/tls.py builds them for
connections and again when the files change)."""

from __future__ import annotations

import ssl

import httpx

from gateway.routes.model import UpstreamTls

__all__ = ["build_context"]


def build_context(config: UpstreamTls) -> ssl.SSLContext:
    """The context `config` describes; OSError or ssl.SSLError if its files do not load."""
    if not config.verify:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif config.ca is not None:
        context = ssl.create_default_context(cafile=config.ca)
    else:
        context = httpx.create_ssl_context(trust_env=False)  # the system's CAs (certifi)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if config.cert is not None:
        context.load_cert_chain(config.cert, config.key)
    return context
