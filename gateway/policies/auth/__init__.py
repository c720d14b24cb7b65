"""Credential checks: a presented credential -> `Principal`, or `AuthError`.

No HTTP types here: the auth middleware turns these into 401 / 403 / 503.

- API keys are compared as SHA-256 digests in constant time, against every key
  of the provider (no early exit), so neither a key nor its position leaks
  through timing. Plain keys in the routes file are hashed at load.
- JWTs are verified by PyJWT with the provider's `algorithms` as the only
  accepted list ("none" is refused at load), a 30 s leeway on exp/nbf, and the
  issuer / audience when configured. A token whose `alg` is not in the list
  fails before any key is used, so an HS256 token signed with an RSA public key
  cannot pass an RS256 provider.
- JWKS are fetched with the gateway's own async client (PyJWT's fetcher
  blocks), cached, and re-fetched on an unknown `kid` at most once a minute; a
  JWKS outage keeps the cached keys working.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import orjson
from jwt.types import Options
from jwt.warnings import InsecureKeyLengthWarning

from gateway.routes.model import ApiKeyProvider, AuthProvider, JwtProvider

__all__ = [
    "ApiKeyAuthenticator",
    "AuthError",
    "AuthUnavailable",
    "Authenticator",
    "JwksKeys",
    "JwtAuthenticator",
    "Principal",
    "build_authenticator",
]

logger = logging.getLogger("gateway.auth")
LEEWAY_SECONDS = 30
JWKS_MIN_REFETCH_SECONDS = 60.0
JWKS_TIMEOUT_SECONDS = 5.0
# Short HMAC secrets are reported once per provider at load (build_authenticator);
# PyJWT would otherwise warn on every decode.
warnings.filterwarnings("ignore", category=InsecureKeyLengthWarning)


@dataclass(frozen=True, slots=True)
class Principal:
    identity: str
    provider: str
    scopes: frozenset[str]
    headers: tuple[tuple[bytes, bytes], ...]  # identity headers for backends


class AuthError(Exception):
    """The credential is missing or invalid (401)."""


class AuthUnavailable(Exception):
    """The credential cannot be checked right now: no JWKS keys yet (503)."""


class ApiKeyAuthenticator:
    def __init__(self, provider: ApiKeyProvider) -> None:
        self.name = provider.name
        self.credential_header = provider.header.encode()
        self.challenge = f'ApiKey header="{provider.header_display}"'
        self._keys = provider.keys
        self._identity_header = (
            provider.identity_header.encode() if provider.identity_header else None
        )

    async def authenticate(self, credential: str) -> Principal:
        digest = hashlib.sha256(credential.encode()).digest()
        found = None
        for key in self._keys:  # no early exit: constant time over the whole list
            if hmac.compare_digest(digest, key.digest) and found is None:
                found = key
        if found is None:
            raise AuthError("invalid API key")
        headers = ((self._identity_header, found.id.encode()),) if self._identity_header else ()
        return Principal(found.id, self.name, found.scopes, headers)


class JwksKeys:
    """The keys of one JWKS URL: fetched on first use, cached, re-fetched on an
    unknown kid no sooner than JWKS_MIN_REFETCH_SECONDS after the last fetch.
    Shared by every provider that names the URL, and across reloads."""

    def __init__(self, url: str, client: httpx.AsyncClient) -> None:
        self.url = url
        self._client = client
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._fetched_at = -JWKS_MIN_REFETCH_SECONDS
        self._fetching: asyncio.Task[None] | None = None

    async def key(self, kid: str | None) -> jwt.PyJWK:
        if (found := self._lookup(kid)) is not None:
            return found
        if self._fetching is not None and not self._fetching.done():
            await asyncio.shield(self._fetching)  # one fetch, however many requests wait
        elif time.monotonic() - self._fetched_at >= JWKS_MIN_REFETCH_SECONDS:
            self._fetching = asyncio.create_task(self._fetch())
            await asyncio.shield(self._fetching)
        if (found := self._lookup(kid)) is not None:
            return found
        if not self._keys:
            raise AuthUnavailable("no signing keys could be fetched")
        raise AuthError("unknown signing key")

    def _lookup(self, kid: str | None) -> jwt.PyJWK | None:
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        return self._keys.get(kid)

    async def _fetch(self) -> None:
        self._fetched_at = time.monotonic()
        try:
            response = await self._client.get(self.url, timeout=JWKS_TIMEOUT_SECONDS)
            response.raise_for_status()
            data = orjson.loads(response.content)
            keys: dict[str | None, jwt.PyJWK] = {}
            for entry in data.get("keys", []):
                try:
                    jwk = jwt.PyJWK(entry)
                except (jwt.PyJWKError, jwt.InvalidKeyError):
                    continue  # a key type or algorithm we cannot use: skip it
                if entry.get("use", "sig") == "sig":
                    keys[entry.get("kid")] = jwk
        except (httpx.HTTPError, orjson.JSONDecodeError, AttributeError, TypeError) as exc:
            logger.warning(
                "JWKS fetch from %s failed: %s; keeping %d cached keys",
                self.url,
                exc,
                len(self._keys),
            )
            return
        self._keys = keys
        logger.info("JWKS fetched from %s: %d keys", self.url, len(keys))


class JwtAuthenticator:
    credential_header = b"authorization"

    def __init__(self, provider: JwtProvider, jwks: JwksKeys | None) -> None:
        self.name = provider.name
        self.challenge = 'Bearer realm="gateway"'
        self._provider = provider
        self._algorithms = list(provider.algorithms)
        self._jwks = jwks
        self._static_key: Any = None
        if provider.secret is not None:
            self._static_key = provider.secret
            if len(provider.secret.encode()) < 32:
                logger.warning(
                    "auth provider %r: HMAC secret shorter than 32 bytes (RFC 7518 3.2)",
                    provider.name,
                )
        elif provider.public_key is not None:
            from cryptography.hazmat.primitives.serialization import load_pem_public_key

            self._static_key = load_pem_public_key(provider.public_key.encode())
        self._options: Options = {
            "verify_aud": provider.audience is not None,
            "require": ["exp"] if provider.require_exp else [],
        }
        self._claim_headers = tuple(
            (claim, header.encode()) for claim, header in provider.claims_to_headers
        )

    async def authenticate(self, credential: str) -> Principal:
        scheme, _, token = credential.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthError("expected a Bearer token")
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") not in self._algorithms:
                raise AuthError("token algorithm not accepted")
            key = self._static_key
            if self._jwks is not None:
                kid = header.get("kid")
                key = await self._jwks.key(kid if isinstance(kid, str) else None)
            claims = jwt.decode(
                token,
                key,
                algorithms=self._algorithms,
                audience=self._provider.audience,
                issuer=self._provider.issuer,
                leeway=LEEWAY_SECONDS,
                options=self._options,
            )
        except jwt.PyJWTError as exc:
            raise AuthError(f"invalid token: {_reason(exc)}") from None
        return self._principal(claims)

    def _principal(self, claims: Mapping[str, Any]) -> Principal:
        identity = claims.get(self._provider.identity_claim)
        if not isinstance(identity, str | int) or isinstance(identity, bool) or identity == "":
            raise AuthError(f"token has no {self._provider.identity_claim!r} claim")
        raw_scopes = claims.get(self._provider.scopes_claim, ())
        if isinstance(raw_scopes, str):
            scopes = frozenset(raw_scopes.split())
        elif isinstance(raw_scopes, list):
            scopes = frozenset(s for s in raw_scopes if isinstance(s, str))
        else:
            scopes = frozenset()
        headers = []
        for claim, header in self._claim_headers:
            value = claims.get(claim)
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                text = str(value)
                if text.isprintable():
                    headers.append((header, text.encode()))
        return Principal(str(identity), self.name, scopes, tuple(headers))


def _reason(exc: jwt.PyJWTError) -> str:
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"no {exc.claim!r} claim"
    reasons: dict[type[jwt.PyJWTError], str] = {
        jwt.ExpiredSignatureError: "expired",
        jwt.ImmatureSignatureError: "not valid yet",
        jwt.InvalidAudienceError: "wrong audience",
        jwt.InvalidIssuerError: "wrong issuer",
        jwt.InvalidSignatureError: "bad signature",
        jwt.InvalidAlgorithmError: "algorithm not accepted",
    }
    return reasons.get(type(exc), "malformed")


type Authenticator = ApiKeyAuthenticator | JwtAuthenticator


def build_authenticator(provider: AuthProvider, jwks: JwksKeys | None) -> Authenticator:
    if isinstance(provider, ApiKeyProvider):
        return ApiKeyAuthenticator(provider)
    return JwtAuthenticator(provider, jwks)
