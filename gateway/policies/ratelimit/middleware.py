"""Rate limits (SPEC 3.5): one token per admitted request from the route's
bucket for this client; 429 with Retry-After when it is empty. Every response
of a rate-limited route carries RateLimit-Limit / -Remaining / -Reset.

When the shared store (Redis) is unreachable, RATE_LIMIT_FAILURE_MODE decides:
`open` admits the request (counted in gateway_ratelimit_store_errors_total,
without RateLimit-* headers, since nothing was counted), `closed` answers 503.

`take_token` is the decision itself, for HTTP requests (the middleware) and
WebSocket handshakes (one token each) alike.
"""

from __future__ import annotations

from typing import cast

from django.http import HttpRequest
from django.http.response import HttpResponseBase

from gateway.edge.middleware import AsyncMiddleware
from gateway.envelope import Envelope, GatewayRequest
from gateway.errors import GatewayError, TooManyRequests, Unavailable, error_response
from gateway.observe import metrics
from gateway.policies.ratelimit import StoreUnavailable

__all__ = ["RateLimitMiddleware", "take_token"]


async def take_token(envelope: Envelope, headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """Take this request's token: the RateLimit-* headers its answer carries
    (none when the route has no limit, or the store is down and `open`).
    Raises TooManyRequests (429, with the same headers) or Unavailable (503)."""
    if envelope.policy is None or envelope.policy.limit is None:
        return {}
    limit = envelope.policy.limit
    assert envelope.gateway is not None  # a route matched: routes are loaded
    runtime = envelope.gateway.runtime
    try:
        decision = await runtime.limiter.acquire(
            limit.bucket(envelope, headers), limit.capacity, limit.rate
        )
    except StoreUnavailable:
        metrics.RATELIMIT_STORE_ERRORS.inc()
        if runtime.fail_closed:
            raise Unavailable("rate limiting is unavailable") from None
        return {}
    rate_headers = {
        "RateLimit-Limit": str(limit.limit),
        "RateLimit-Remaining": str(decision.remaining),
        "RateLimit-Reset": str(decision.reset_after),
    }
    if not decision.allowed:
        metrics.RATELIMIT_REJECTED.labels(limit.route).inc()
        refusal = TooManyRequests(decision.retry_after)
        refusal.headers.update(rate_headers)
        raise refusal
    return rate_headers


class RateLimitMiddleware(AsyncMiddleware):
    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        envelope = cast(GatewayRequest, request).envelope
        if envelope.policy is None or envelope.policy.limit is None:
            return await self.get_response(request)
        try:
            rate_headers = await take_token(
                envelope, cast(GatewayRequest, request).scope["headers"]
            )
        except GatewayError as exc:
            return error_response(exc, request_id=envelope.request_id, route=envelope.route_name)
        response = await self.get_response(request)
        for name, value in rate_headers.items():
            response.headers[name] = value
        return response
