"""A backend hook: each backend call carries an HMAC-SHA256 signature, so that
upstreams can tell the gateway's calls from anyone else's.

    hooks:
      backend: [acme_hooks.signing:sign_backend_call]

The key comes from BACKEND_SIGNING_KEY when the module is imported (when the
routes file loads); without it the hook name is refused at its line, and the
gateway does not start. What is signed, newline-separated: the method, the
path, the query string as sent, the timestamp, the request id. Upstreams
recompute it and reject old timestamps.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time

from gateway.hooks import BackendCall

_KEY = os.environ.get("BACKEND_SIGNING_KEY", "").encode()
if len(_KEY) < 32:
    raise RuntimeError("BACKEND_SIGNING_KEY must be set to at least 32 bytes")


def signature(key: bytes, method: str, path: str, query: str, timestamp: str, rid: str) -> str:
    """What an upstream recomputes to check a call."""
    message = "\n".join((method, path, query, timestamp, rid)).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


async def sign_backend_call(call: BackendCall) -> None:
    timestamp = str(int(time.time()))
    call.set_header("X-Signature-Timestamp", timestamp)
    call.set_header(
        "X-Signature",
        signature(
            _KEY, call.method, call.path, call.query_string, timestamp, call.request.request_id
        ),
    )
