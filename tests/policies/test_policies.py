"""Per-route policies (gateway/policy.py)."""

from __future__ import annotations

from gateway.envelope import RequestContext
from gateway.policies import build_policy, credential_header_names, identity_header_names
from gateway.runtime import Services
from tests.conftest import table

ROUTES = table(
    """
    version: 1
    settings:
      cors: {allow_origins: [https://a.example], allow_methods: [GET], allow_credentials: true}
    upstreams: {u: {url: "http://u"}}
    auth:
      keys: {type: api_key, header: X-Key, identity_header: X-Client, keys: [{id: a, key: k}]}
      tokens: {type: jwt, algorithms: [HS256], secret: a-secret-that-is-long-enough-000000, claims_to_headers: {sub: X-Sub}}
    routes:
      - {name: client, path: /c, auth: [keys, tokens], rate_limit: {limit: 10, window: 1m}, backends: [{upstream: u, path: /x}]}
      - {name: header, path: /h, rate_limit: {limit: 5, window: 1s, burst: 20, key: "header:X-Tenant"}, backends: [{upstream: u, path: /x}]}
      - {name: open, path: /o, cors: {allow_origins: ["*"]}, backends: [{upstream: u, path: /x}]}
    """
)


def ctx(identity: str | None = None, provider: str = "keys") -> RequestContext:
    context = RequestContext(
        request_id="r",
        client="192.0.2.9",
        forwarded_for="",
        forwarded_proto="http",
        forwarded_host="h",
    )
    context.identity = identity
    context.provider = provider if identity is not None else None
    return context


def policies() -> dict:
    services = Services(redis_url="", failure_mode="open")
    return {r.name: build_policy(r, ROUTES, services) for r in ROUTES.routes}


def test_rate_limit_buckets() -> None:
    client, header = policies()["client"].limit, policies()["header"].limit
    assert (client.capacity, client.limit, round(client.rate, 4)) == (10, 10, round(10 / 60, 4))
    assert client.bucket(ctx(), {}) == "client:ip:192.0.2.9"
    assert client.bucket(ctx("acme"), {}) == "client:id:keys/acme"
    # the same identity from another provider draws from another bucket
    assert client.bucket(ctx("acme", "tokens"), {}) == "client:id:tokens/acme"
    assert (header.capacity, header.rate) == (20, 5.0)
    tenant_a = header.bucket(ctx(), {"HTTP_X_TENANT": "a"})
    assert tenant_a.startswith("header:h:") and tenant_a != header.bucket(
        ctx(), {"HTTP_X_TENANT": "b"}
    )
    assert header.bucket(ctx(), {}) == "header:ip:192.0.2.9"


def test_auth_policy() -> None:
    auth = policies()["client"].auth
    assert auth is not None
    assert [a.name for a in auth.authenticators] == ["keys", "tokens"]
    assert auth.challenge == 'ApiKey header="X-Key", Bearer realm="gateway"'
    assert policies()["open"].auth is None


def test_cors_policy() -> None:
    inherited, own = policies()["client"].cors, policies()["open"].cors
    assert inherited is not None and own is not None
    assert inherited.allows("https://a.example") and not inherited.allows("https://b.example")
    assert inherited.credentials and ("Access-Control-Allow-Methods", "GET") in inherited.preflight
    assert own.allows("https://anything.example") and not own.credentials


def test_header_names() -> None:
    assert identity_header_names(ROUTES) == {b"x-client", b"x-sub"}
    assert credential_header_names(ROUTES.routes[0], ROUTES) == {b"x-key", b"authorization"}
    assert credential_header_names(ROUTES.routes[2], ROUTES) == frozenset()
