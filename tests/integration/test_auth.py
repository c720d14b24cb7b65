"""Auth through the real gateway process (SPEC 3.3, 3.4)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.integration.conftest import Gateway, GatewayFactory, Stub

SECRET = "s3cret-for-hs256-tokens-0123456789abcdef"
ISSUER = "https://auth.example.com/"


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    data = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {**data, "kid": kid, "use": "sig", "alg": "RS256"}


STAFF_KEY = rsa_key()
SSO_KEY_A, SSO_KEY_B = rsa_key(), rsa_key()

ROUTES = """
version: 1
upstreams:
  stub: {url: "${STUB}"}
auth:
  partners:
    type: api_key
    identity_header: X-Client-Id
    keys:
      - {id: acme, key: acme-key-123, scopes: [orders:read]}
      - {id: globex, sha256: "${GLOBEX_DIGEST}", scopes: [orders:read, orders:write]}
  hs:
    type: jwt
    algorithms: [HS256]
    secret: "${HS_SECRET}"
    issuer: https://auth.example.com/
    audience: gateway
    claims_to_headers: {sub: X-User-Id, tenant: X-Tenant}
  lax:
    type: jwt
    algorithms: [HS256]
    secret: "${HS_SECRET}"
    require_exp: false
  staff:
    type: jwt
    algorithms: [RS256]
    public_key: "${STAFF_PEM}"
  sso:
    type: jwt
    algorithms: [RS256]
    jwks_url: "${STUB}/jwks.json"
    scopes_claim: scp
routes:
  - {name: keyed, path: /k, auth: partners, backends: [{upstream: stub, path: /echo/k, allow: [headers]}]}
  - {name: scoped, path: /scoped, auth: partners, scopes: [orders:write], backends: [{upstream: stub, path: /echo/s, allow: [headers]}]}
  - {name: hs, path: /hs, auth: hs, backends: [{upstream: stub, path: /echo/hs, allow: [headers]}]}
  - {name: rs, path: /rs, auth: staff, backends: [{upstream: stub, path: /echo/rs, allow: [headers]}]}
  - {name: sso, path: /sso, auth: sso, scopes: [read], backends: [{upstream: stub, path: /echo/sso, allow: [headers]}]}
  - {name: either, path: /either, auth: [partners, hs], backends: [{upstream: stub, path: /echo/e, allow: [headers]}]}
  - name: proxied
    path: /p/{rest:path}
    auth: partners
    proxy: {upstream: stub, path: "/{rest}"}
  - {name: lax, path: /lax, auth: lax, backends: [{upstream: stub, path: /echo/lax, allow: [headers]}]}
  - {name: public, path: /public, backends: [{upstream: stub, path: /echo/pub, allow: [headers]}]}
"""


@pytest.fixture(scope="module")
def gw(start_gateway: GatewayFactory, stub: Stub) -> Gateway:
    httpx.post(stub.url + "/_jwks", json={"keys": [jwk(SSO_KEY_A, "a")]})
    return start_gateway(
        ROUTES,
        STUB=stub.url,
        HS_SECRET=SECRET,
        STAFF_PEM=public_pem(STAFF_KEY),
        GLOBEX_DIGEST=hashlib.sha256(b"globex-key-456").hexdigest(),
    )


def claims(**extra: object) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": "user-7", "iss": ISSUER, "aud": "gateway", "iat": now, "exp": now + 300, **extra}


def hs(**extra: object) -> str:
    return jwt.encode(claims(**extra), SECRET, algorithm="HS256")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sent(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 200, response.text
    return dict(response.json()["headers"])


def assert_401(response: httpx.Response, challenge: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith(challenge)


def test_api_keys(gw: Gateway) -> None:
    headers = sent(gw.get("/k", headers={"X-API-Key": "acme-key-123"}))
    assert headers["x-client-id"] == "acme"
    assert "x-api-key" not in headers  # the consumed credential is not forwarded
    assert sent(gw.get("/k", headers={"x-api-key": "globex-key-456"}))["x-client-id"] == "globex"
    assert_401(gw.get("/k"), 'ApiKey header="X-API-Key"')
    assert_401(gw.get("/k", headers={"X-API-Key": "acme-key-124"}), "ApiKey")


def test_scopes(gw: Gateway) -> None:
    forbidden = gw.get("/scoped", headers={"X-API-Key": "acme-key-123"})
    assert forbidden.status_code == 403
    assert "orders:write" in forbidden.json()["detail"]
    assert gw.get("/scoped", headers={"X-API-Key": "globex-key-456"}).status_code == 200


def test_identity_headers_cannot_be_forged(gw: Gateway) -> None:
    forged = {"X-Client-Id": "admin", "X-User-Id": "root", "X-Tenant": "other"}
    headers = sent(gw.get("/k", headers={"X-API-Key": "acme-key-123", **forged}))
    assert headers["x-client-id"] == "acme" and "x-user-id" not in headers
    via_proxy = gw.get("/p/echo/x", headers={"X-API-Key": "acme-key-123", **forged}).json()
    proxied = dict(via_proxy["headers"])
    assert proxied["x-client-id"] == "acme"
    assert "x-user-id" not in proxied and "x-tenant" not in proxied and "x-api-key" not in proxied
    public = dict(gw.get("/public", headers=forged).json()["headers"])
    assert not {"x-client-id", "x-user-id", "x-tenant"} & public.keys()


def test_hs256_token_and_claims_to_headers(gw: Gateway) -> None:
    headers = sent(gw.get("/hs", headers=bearer(hs(tenant="t-9"))))
    assert headers["x-user-id"] == "user-7" and headers["x-tenant"] == "t-9"
    assert "authorization" not in headers


def test_leeway(gw: Gateway) -> None:
    now = int(time.time())
    assert gw.get("/hs", headers=bearer(hs(exp=now - 10))).status_code == 200  # within 30 s
    assert gw.get("/hs", headers=bearer(hs(nbf=now + 10))).status_code == 200


def test_a_token_without_exp_is_refused_unless_the_provider_allows_it(gw: Gateway) -> None:
    forever = claims()
    del forever["exp"]
    refused = gw.get("/hs", headers=bearer(jwt.encode(forever, SECRET, algorithm="HS256")))
    assert_401(refused, "Bearer")
    assert "exp" in refused.json()["detail"]
    lax = {"sub": "user-7"}  # require_exp: false
    assert (
        gw.get("/lax", headers=bearer(jwt.encode(lax, SECRET, algorithm="HS256"))).status_code
        == 200
    )
    expired = {"sub": "u", "exp": int(time.time()) - 120}  # present: still checked
    assert_401(
        gw.get("/lax", headers=bearer(jwt.encode(expired, SECRET, algorithm="HS256"))), "Bearer"
    )


def forge_hs256(secret: bytes, payload: dict[str, Any]) -> str:
    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing = part(b'{"alg":"HS256","typ":"JWT"}') + "." + part(json.dumps(payload).encode())
    signature = hmac.new(secret, signing.encode(), hashlib.sha256).digest()
    return signing + "." + part(signature)


def unsigned(payload: dict[str, Any]) -> str:
    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    return part(b'{"alg":"none","typ":"JWT"}') + "." + part(json.dumps(payload).encode()) + "."


@pytest.mark.parametrize(
    ("path", "token"),
    [
        (
            "/hs",
            lambda: jwt.encode(
                claims(), "another-secret-that-is-long-enough-0000", algorithm="HS256"
            ),
        ),  # bad signature
        ("/hs", lambda: hs(exp=int(time.time()) - 120)),  # expired beyond the leeway
        ("/hs", lambda: hs(nbf=int(time.time()) + 120)),  # not valid yet
        ("/hs", lambda: hs(iss="https://evil.example.com/")),  # wrong issuer
        ("/hs", lambda: hs(aud="someone-else")),  # wrong audience
        ("/hs", lambda: unsigned(claims())),  # alg none
        ("/hs", lambda: "not.a.token"),
        ("/rs", lambda: forge_hs256(public_pem(STAFF_KEY).encode(), claims())),  # HS/RS confusion
        ("/rs", lambda: jwt.encode(claims(), rsa_key(), algorithm="RS256")),  # another key
        (
            "/sso",
            lambda: jwt.encode(
                claims(scp="read"), SSO_KEY_B, algorithm="RS256", headers={"kid": "zz"}
            ),
        ),  # unknown kid
        ("/hs", lambda: hs().replace(".", "!", 1)),
    ],
)
def test_invalid_tokens_are_401(gw: Gateway, path: str, token) -> None:  # type: ignore[no-untyped-def]
    assert_401(gw.get(path, headers=bearer(token())), "Bearer")


def test_bearer_scheme_required(gw: Gateway) -> None:
    assert_401(gw.get("/hs", headers={"Authorization": f"Basic {hs()}"}), "Bearer")
    assert_401(gw.get("/hs"), "Bearer")


def test_rs256_public_key(gw: Gateway) -> None:
    token = jwt.encode(claims(), STAFF_KEY, algorithm="RS256")
    assert gw.get("/rs", headers=bearer(token)).status_code == 200


def test_any_provider_suffices(gw: Gateway) -> None:
    assert gw.get("/either", headers={"X-API-Key": "acme-key-123"}).status_code == 200
    assert gw.get("/either", headers=bearer(hs())).status_code == 200
    missing = gw.get("/either")
    assert_401(missing, "ApiKey")
    assert "Bearer" in missing.headers["www-authenticate"]


def test_jwks_scopes_and_key_rotation(gw: Gateway, stub: Stub) -> None:
    token_a = jwt.encode(claims(scp=["read"]), SSO_KEY_A, algorithm="RS256", headers={"kid": "a"})
    assert gw.get("/sso", headers=bearer(token_a)).status_code == 200
    no_scope = jwt.encode(claims(scp=["write"]), SSO_KEY_A, algorithm="RS256", headers={"kid": "a"})
    assert gw.get("/sso", headers=bearer(no_scope)).status_code == 403
    fetches = stub.count("/jwks.json")
    # The identity provider rotates: it now publishes key b only.
    httpx.post(stub.url + "/_jwks", json={"keys": [jwk(SSO_KEY_B, "b")]})
    token_b = jwt.encode(claims(scp="read"), SSO_KEY_B, algorithm="RS256", headers={"kid": "b"})
    assert gw.get("/sso", headers=bearer(token_b)).status_code == 401  # no re-fetch within a minute
    assert gw.get("/sso", headers=bearer(token_a)).status_code == 200  # cached key a still works
    assert stub.count("/jwks.json") == fetches
    time.sleep(61)
    assert gw.get("/sso", headers=bearer(token_b)).status_code == 200  # re-fetched, no restart
    assert stub.count("/jwks.json") == fetches + 1
