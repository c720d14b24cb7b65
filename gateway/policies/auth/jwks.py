"""JWKS: the signing keys a JWT provider's `jwks_url` publishes.

Fetched with the gateway's own async client (PyJWT's fetcher blocks), cached,
and re-fetched on an unknown `kid` no sooner than JWKS_MIN_REFETCH_SECONDS
after the last fetch; an outage keeps the cached keys working. One JwksKeys
per URL, shared by every provider that names it and kept across reloads
(gateway/runtime.py).
"""

from __future__ import annotations

import asyncio
import logging
import time

import httpx
import jwt
import orjson

from gateway.policies.auth.base import AuthError, AuthUnavailable

__all__ = ["JWKS_MIN_REFETCH_SECONDS", "JwksKeys"]

logger = logging.getLogger("gateway.auth")
JWKS_MIN_REFETCH_SECONDS = 60.0
JWKS_TIMEOUT_SECONDS = 5.0


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
