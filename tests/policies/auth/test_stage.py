"""Auth's stage (gateway/policies/auth/stage.py) and what auth tells the
route kinds and the edge (gateway/policies/auth/__init__.py)."""

from __future__ import annotations

import base64

import orjson
import pytest

from gateway.errors import Forbidden, Unauthorized, Unavailable
from gateway.policies.auth import (
    OPTION,
    AuthRule,
    consumed_headers,
    owned_headers,
    query_credentials,
    secret_params,
)
from gateway.policies.auth.stage import auth_stage
from gateway.routes import RoutesFileError
from tests.calls import context, handshake_call, http_call, ok
from tests.conftest import table

ROUTES = table(
    """
    version: 1
    upstreams: {u: {url: "http://u"}}
    auth:
      keys: {type: api_key, header: X-Key, identity_header: X-Client, query_param: key,
             keys: [{id: alice, key: alice-key, scopes: [read]}, {id: bob, key: bob-key}]}
      tokens: {type: jwt, algorithms: [HS256], secret: a-secret-that-is-long-enough-000000, claims_to_headers: {sub: X-Sub}}
      remote: {type: jwt, algorithms: [RS256], jwks_url: "http://127.0.0.1:1/jwks"}
    routes:
      - {name: either, path: /e, auth: [keys, tokens], backends: [{upstream: u, path: /x}]}
      - {name: scoped, path: /s, auth: keys, scopes: [read], backends: [{upstream: u, path: /x}]}
      - {name: remote, path: /r, auth: remote, backends: [{upstream: u, path: /x}]}
      - {name: public, path: /p, backends: [{upstream: u, path: /x}]}
    """
)
EITHER, SCOPED, REMOTE, PUBLIC = ROUTES.routes
CONTEXT = context(ROUTES)
# An RS256 token naming a key nobody could fetch (its signature is never looked at).
UNKNOWN_KEY = ".".join(
    base64.urlsafe_b64encode(orjson.dumps(part)).rstrip(b"=").decode()
    for part in ({"alg": "RS256", "kid": "k1", "typ": "JWT"}, {"sub": "x"}, {"sig": 1})
)


def test_the_routes_file_names_providers_and_scopes() -> None:
    assert OPTION.of(EITHER) == AuthRule(("keys", "tokens"), frozenset())
    assert OPTION.of(SCOPED) == AuthRule(("keys",), frozenset({"read"}))
    assert OPTION.of(PUBLIC) is None and auth_stage(PUBLIC, CONTEXT) is None


def test_unknown_providers_and_scopes_without_auth_are_errors() -> None:
    with pytest.raises(RoutesFileError) as raised:
        table(
            """
            version: 1
            upstreams: {u: {url: "http://u"}}
            auth: {keys: {type: api_key, keys: [{id: a, key: k}]}}
            routes:
              - {name: a, path: /a, auth: kyes, backends: [{upstream: u, path: /x}]}
              - {name: b, path: /b, scopes: [x], backends: [{upstream: u, path: /x}]}
            """
        )
    text = str(raised.value)
    assert "unknown auth provider 'kyes' (did you mean 'keys'?)" in text
    assert "route 'b': scopes: scopes need 'auth' on the route" in text


async def test_a_valid_credential_says_who_is_asking() -> None:
    stage = auth_stage(EITHER, CONTEXT)
    assert stage is not None
    call = http_call(EITHER, headers={"X-Key": "alice-key"})
    await stage(ok)(call)
    caller = call.envelope.caller
    assert caller is not None and (caller.identity, caller.provider) == ("alice", "keys")
    assert caller.headers == ((b"x-client", b"alice"),) and caller.key == "keys/alice"


async def test_a_query_credential_counts_when_the_header_is_absent() -> None:
    stage = auth_stage(EITHER, CONTEXT)
    assert stage is not None
    call = http_call(EITHER, query_credentials={"keys": "bob-key"})
    await stage(ok)(call)
    assert call.envelope.identity == "bob"


async def test_missing_or_wrong_credentials_are_401_with_every_challenge() -> None:
    stage = auth_stage(EITHER, CONTEXT)
    assert stage is not None
    with pytest.raises(Unauthorized) as missing:
        await stage(ok)(http_call(EITHER))
    assert missing.value.detail == "missing credentials"
    challenge = missing.value.headers["WWW-Authenticate"]
    assert challenge.startswith('ApiKey header="X-Key", Bearer')
    with pytest.raises(Unauthorized) as wrong:
        await stage(ok)(http_call(EITHER, headers={"X-Key": "nope"}))
    assert wrong.value.detail == "invalid API key"


async def test_a_missing_scope_is_403_and_a_handshake_goes_the_same_way() -> None:
    stage = auth_stage(SCOPED, CONTEXT)
    assert stage is not None
    with pytest.raises(Forbidden, match="missing scope: read"):
        await stage(ok)(http_call(SCOPED, headers={"X-Key": "bob-key"}))
    handshake = handshake_call(SCOPED, headers={"X-Key": "alice-key"})
    await stage(ok)(handshake)
    assert handshake.envelope.identity == "alice"


async def test_keys_that_cannot_be_fetched_are_503_not_401() -> None:
    stage = auth_stage(REMOTE, CONTEXT)
    assert stage is not None
    with pytest.raises(Unavailable):
        await stage(ok)(http_call(REMOTE, headers={"Authorization": f"Bearer {UNKNOWN_KEY}"}))


def test_what_auth_tells_the_route_kinds_and_the_edge() -> None:
    assert set(owned_headers(CONTEXT)) == {b"x-client", b"x-sub"}
    assert set(consumed_headers(EITHER, CONTEXT)) == {b"x-key", b"authorization"}
    assert consumed_headers(PUBLIC, CONTEXT) == ()
    assert query_credentials(EITHER, CONTEXT) == {"key": "keys"}
    assert set(secret_params(CONTEXT)) == {"key"}
    # through the registry, beside the mirror's X-Gateway-Mirror
    assert CONTEXT.owned_headers == {b"x-client", b"x-sub", b"x-gateway-mirror"}
