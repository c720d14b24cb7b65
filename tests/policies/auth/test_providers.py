"""Credential checks (gateway/policies/auth/) without HTTP: keys, tokens, JWKS caching."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import httpx
import jwt
import pytest
import respx
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.policies.auth import AuthError, AuthUnavailable
from gateway.policies.auth.api_key import ApiKeyAuthenticator
from gateway.policies.auth.jwks import JWKS_MIN_REFETCH_SECONDS, JwksKeys
from gateway.policies.auth.jwt import JwtAuthenticator
from tests.conftest import table

SECRET = "unit-test-secret-that-is-long-enough!!"
PROVIDERS = table(
    f"""
    version: 1
    auth:
      keys:
        type: api_key
        header: X-Key
        identity_header: X-Client
        keys:
          - {{id: acme, key: plain-key, scopes: [a, b]}}
          - {{id: globex, sha256: {hashlib.sha256(b"hashed-key").hexdigest()}}}
      hs:
        type: jwt
        algorithms: [HS256]
        secret: {SECRET}
        issuer: iss
        audience: aud
        identity_claim: uid
        scopes_claim: perms
        claims_to_headers: {{uid: X-Uid, tier: X-Tier, obj: X-Obj}}
      lax:
        type: jwt
        algorithms: [HS256]
        secret: {SECRET}
        require_exp: false
      remote:
        type: jwt
        algorithms: [RS256]
        jwks_url: https://idp.example/jwks
    routes: []
    """
).sections["auth"]


async def test_api_keys_plain_and_hashed() -> None:
    auth = ApiKeyAuthenticator(PROVIDERS["keys"])
    assert auth.credential_header == b"x-key" and auth.challenge == 'ApiKey header="X-Key"'
    acme = await auth.authenticate("plain-key")
    assert (acme.identity, acme.scopes, acme.headers) == (
        "acme",
        frozenset({"a", "b"}),
        ((b"x-client", b"acme"),),
    )
    assert (await auth.authenticate("hashed-key")).identity == "globex"
    for wrong in ("plain-ke", "plain-key ", "", "x" * 10_000):
        with pytest.raises(AuthError):
            await auth.authenticate(wrong)


async def test_a_short_hmac_secret_is_reported_once_not_on_every_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """RFC 7518 wants an HMAC key as long as the hash: 64 bytes for HS512.
    A shorter one is logged when the provider is built, naming the minimum;
    verifying tokens then raises no warning (PyJWT warns on every decode)."""
    provider = table(
        f"""
        version: 1
        auth: {{short: {{type: jwt, algorithms: [HS256, HS512], secret: {SECRET}}}}}
        routes: []
        """
    ).sections["auth"]["short"]
    with caplog.at_level("WARNING", logger="gateway.auth"):
        auth = JwtAuthenticator(provider, None)
    assert [r.getMessage() for r in caplog.records] == [
        "auth provider 'short': HMAC secret shorter than 64 bytes (RFC 7518 3.2)"
    ]
    signed = jwt.encode({"sub": "u", "exp": int(time.time()) + 60}, SECRET, algorithm="HS512")
    assert (await auth.authenticate("Bearer " + signed)).identity == "u"  # filterwarnings=error


def token(**claims: object) -> str:
    now = int(time.time())
    return jwt.encode(
        {"uid": "u1", "iss": "iss", "aud": "aud", "exp": now + 60, **claims},
        SECRET,
        algorithm="HS256",
    )


async def test_jwt_claims() -> None:
    auth = JwtAuthenticator(PROVIDERS["hs"], None)
    principal = await auth.authenticate("Bearer " + token(perms=["x", "y"], tier=3, obj={"no": 1}))
    assert principal.identity == "u1" and principal.scopes == frozenset({"x", "y"})
    assert dict(principal.headers) == {b"x-uid": b"u1", b"x-tier": b"3"}  # objects are not sent
    assert (await auth.authenticate("bearer " + token(perms="x y"))).scopes == frozenset({"x", "y"})


@pytest.mark.parametrize(
    "credential",
    [
        "Bearer "
        + jwt.encode({"uid": "u"}, "wrong-secret-that-is-long-enough-0000", algorithm="HS256"),
        "Bearer "
        + jwt.encode({"uid": "u", "iss": "iss", "aud": "aud", "exp": 1}, SECRET, algorithm="HS256"),
        "Bearer "
        + jwt.encode({"uid": "u", "iss": "other", "aud": "aud"}, SECRET, algorithm="HS256"),
        "Bearer "
        + jwt.encode({"iss": "iss", "aud": "aud"}, SECRET, algorithm="HS256"),  # no identity claim
        "Bearer "  # an algorithm the provider does not accept
        + jwt.encode({"uid": "u", "iss": "iss", "aud": "aud"}, SECRET * 2, algorithm="HS384"),
        "Token abc",
        "Bearer",
    ],
)
async def test_jwt_rejections(credential: str) -> None:
    with pytest.raises(AuthError):
        await JwtAuthenticator(PROVIDERS["hs"], None).authenticate(credential)


async def test_a_token_without_exp_is_refused_unless_the_provider_allows_it() -> None:
    claims = {"uid": "u", "iss": "iss", "aud": "aud"}
    strict = JwtAuthenticator(PROVIDERS["hs"], None)
    with pytest.raises(AuthError, match="no 'exp' claim"):
        await strict.authenticate("Bearer " + jwt.encode(claims, SECRET, algorithm="HS256"))
    lax = JwtAuthenticator(PROVIDERS["lax"], None)
    lax_token = jwt.encode({"sub": "u"}, SECRET, algorithm="HS256")
    assert (await lax.authenticate("Bearer " + lax_token)).identity == "u"
    expired = jwt.encode({"sub": "u", "exp": 1}, SECRET, algorithm="HS256")
    with pytest.raises(AuthError, match="expired"):  # exp is still checked when present
        await lax.authenticate("Bearer " + expired)


def rsa_jwk(kid: str) -> tuple[rsa.RSAPrivateKey, dict[str, Any]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key, {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key())), "kid": kid}


async def test_jwks_cache_refetch_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr("gateway.policies.auth.jwks.time.monotonic", lambda: now[0])
    key_a, jwk_a = rsa_jwk("a")
    key_b, jwk_b = rsa_jwk("b")
    served = {"keys": [jwk_a]}
    async with httpx.AsyncClient() as client:
        jwks = JwksKeys("https://idp.example/jwks", client)
        auth = JwtAuthenticator(PROVIDERS["remote"], jwks)
        with respx.mock(using="httpx") as mock:
            route = mock.get("https://idp.example/jwks").mock(
                side_effect=lambda _: httpx.Response(200, json=served)
            )

            def sign(key: rsa.RSAPrivateKey, kid: str) -> str:
                return "Bearer " + jwt.encode(
                    {"sub": "s", "exp": time.time() + 60},
                    key,
                    algorithm="RS256",
                    headers={"kid": kid},
                )

            assert (
                await auth.authenticate(sign(key_a, "a"))
            ).identity == "s"  # fetched on first use
            served = {"keys": [jwk_a, jwk_b]}
            with pytest.raises(AuthError):
                await auth.authenticate(sign(key_b, "b"))  # too soon to fetch again
            assert route.call_count == 1
            now[0] += JWKS_MIN_REFETCH_SECONDS
            assert (await auth.authenticate(sign(key_b, "b"))).identity == "s"
            assert route.call_count == 2
            route.mock(side_effect=httpx.ConnectError("idp down"))
            now[0] += JWKS_MIN_REFETCH_SECONDS
            with pytest.raises(AuthError):
                await auth.authenticate(sign(key_b, "zz"))
            assert (
                await auth.authenticate(sign(key_a, "a"))
            ).identity == "s"  # outage: cached keys work


async def test_jwks_concurrent_first_use_fetches_once_and_outage_is_503() -> None:
    key, jwk_a = rsa_jwk("a")
    async with httpx.AsyncClient() as client:
        with respx.mock(using="httpx") as mock:
            route = mock.get("https://idp.example/jwks").respond(json={"keys": [jwk_a]})
            auth = JwtAuthenticator(
                PROVIDERS["remote"], JwksKeys("https://idp.example/jwks", client)
            )
            credential = "Bearer " + jwt.encode(
                {"sub": "s", "exp": time.time() + 60}, key, algorithm="RS256", headers={"kid": "a"}
            )
            import asyncio

            results = await asyncio.gather(*(auth.authenticate(credential) for _ in range(10)))
            assert {p.identity for p in results} == {"s"} and route.call_count == 1
            mock.get("https://idp.example/other").mock(side_effect=httpx.ConnectError("down"))
            empty = JwtAuthenticator(
                PROVIDERS["remote"], JwksKeys("https://idp.example/other", client)
            )
            with pytest.raises(AuthUnavailable):
                await empty.authenticate(credential)
