import hashlib
import hmac
import os

from acme_hooks.signing import sign_backend_call, signature

from gateway.hooks.testing import backend_call, make_request


async def test_each_call_is_signed_as_the_upstream_recomputes_it() -> None:
    call = backend_call(
        "orders",
        request=make_request(request_id="rid-1"),
        path="/orders",
        query={"user": "1", "limit": "10"},
    )
    await sign_backend_call(call)
    timestamp = call.headers["x-signature-timestamp"]
    key = os.environ["BACKEND_SIGNING_KEY"].encode()
    message = f"GET\n/orders\nuser=1&limit=10\n{timestamp}\nrid-1".encode()
    assert call.headers["x-signature"] == hmac.new(key, message, hashlib.sha256).hexdigest()
    assert (
        signature(key, "GET", "/orders", "user=1&limit=10", timestamp, "rid-1")
        == (call.headers["x-signature"])
    )


async def test_a_changed_query_changes_the_signature() -> None:
    one, two = backend_call(query={"a": "1"}), backend_call(query={"a": "2"})
    await sign_backend_call(one)
    await sign_backend_call(two)
    assert one.headers["x-signature"] != two.headers["x-signature"]
