"""Per-route policies (gateway/policies)."""

from __future__ import annotations

from gateway.assembly import build_gateway
from gateway.envelope import Envelope
from gateway.policies.auth import build_authenticators, owned_headers
from gateway.policies.route import build_policy
from gateway.runtime import Runtime
from tests.conftest import envelope, table

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


def ctx(identity: str | None = None, provider: str = "keys") -> Envelope:
    return envelope(identity=identity, provider=provider if identity is not None else None)


RUNTIME = Runtime(redis_url="", failure_mode="open")
AUTHENTICATORS = build_authenticators(ROUTES, RUNTIME)


def policies() -> dict:
    return {r.name: build_policy(r, AUTHENTICATORS, ROUTES.hooks) for r in ROUTES.routes}


def test_rate_limit_buckets() -> None:
    client, header = policies()["client"].limit, policies()["header"].limit
    assert (client.capacity, client.limit, round(client.rate, 4)) == (10, 10, round(10 / 60, 4))
    assert client.bucket(ctx(), []) == "client:ip:192.0.2.9"
    assert client.bucket(ctx("acme"), []) == "client:id:keys/acme"
    # the same identity from another provider draws from another bucket
    assert client.bucket(ctx("acme", "tokens"), []) == "client:id:tokens/acme"
    assert (header.capacity, header.rate) == (20, 5.0)
    tenant_a = header.bucket(ctx(), [(b"x-tenant", b"a")])
    assert tenant_a.startswith("header:h:") and tenant_a != header.bucket(
        ctx(), [(b"x-tenant", b"b")]
    )
    assert header.bucket(ctx(), [(b"x-tenant", b"")]) == "header:ip:192.0.2.9"
    assert header.bucket(ctx(), []) == "header:ip:192.0.2.9"


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


def test_header_names_come_from_the_authenticators() -> None:
    assert owned_headers(AUTHENTICATORS) == {b"x-client", b"x-sub"}
    parts_of = build_gateway  # the pipeline gets them through Parts
    assert parts_of is not None
    credentials = {name: a.credential_header for name, a in AUTHENTICATORS.items()}
    assert credentials == {"keys": b"x-key", "tokens": b"authorization"}
