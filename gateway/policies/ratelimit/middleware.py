"""Rate limits (SPEC 3.5): one token per admitted request from the route's
bucket for this client; 429 with Retry-After when it is empty. Every response
of a rate-limited route carries RateLimit-Limit / -Remaining / -Reset.

When the shared store (Redis) is unreachable, RATE_LIMIT_FAILURE_MODE decides:
`open` admits the request (counted in gateway_ratelimit_store_errors_total,
without RateLimit-* headers, since nothing was counted), `closed` answers 503.
"""

from __future__ import annotations

from typing import cast

from django.http import HttpRequest
from django.http.response import HttpResponseBase

from gateway.edge.middleware import AsyncMiddleware
from gateway.envelope import GatewayRequest
from gateway.errors import problem_response
from gateway.observe import metrics
from gateway.policies.ratelimit import Decision, StoreUnavailable

__all__ = ["RateLimitMiddleware"]


class RateLimitMiddleware(AsyncMiddleware):
    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        envelope = cast(GatewayRequest, request).envelope
        if envelope.policy is None or envelope.policy.limit is None:
            return await self.get_response(request)
        route, limit = envelope.route_name, envelope.policy.limit
        assert envelope.gateway is not None  # a route matched: routes are loaded
        runtime = envelope.gateway.runtime
        try:
            decision = await runtime.limiter.acquire(
                limit.bucket(envelope, request.META), limit.capacity, limit.rate
            )
        except StoreUnavailable:
            metrics.RATELIMIT_STORE_ERRORS.inc()
            if runtime.fail_closed:
                return problem_response(
                    503, "rate limiting is unavailable", request_id=envelope.request_id, route=route
                )
            return await self.get_response(request)
        if not decision.allowed:
            metrics.RATELIMIT_REJECTED.labels(route).inc()
            response: HttpResponseBase = problem_response(
                429,
                "rate limit exceeded",
                request_id=envelope.request_id,
                route=route,
                slug="too-many-requests",
                headers={"Retry-After": str(decision.retry_after)},
            )
        else:
            response = await self.get_response(request)
        _add_headers(response, limit.limit, decision)
        return response


def _add_headers(response: HttpResponseBase, limit: int, decision: Decision) -> None:
    response.headers["RateLimit-Limit"] = str(limit)
    response.headers["RateLimit-Remaining"] = str(decision.remaining)
    response.headers["RateLimit-Reset"] = str(decision.reset_after)
