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
from gateway.registry import Gateway

__all__ = ["RateLimitMiddleware"]


class RateLimitMiddleware(AsyncMiddleware):
    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        ctx = cast(GatewayRequest, request).gateway
        if ctx.policy is None or ctx.policy.limit is None:
            return await self.get_response(request)
        route, limit = ctx.route, ctx.policy.limit
        services = cast(Gateway, cast(GatewayRequest, request).scope["gateway.state"]).services
        try:
            decision = await services.limiter.acquire(
                limit.bucket(ctx, request.META), limit.capacity, limit.rate
            )
        except StoreUnavailable:
            metrics.RATELIMIT_STORE_ERRORS.inc()
            if services.fail_closed:
                return problem_response(
                    503, "rate limiting is unavailable", request_id=ctx.request_id, route=route
                )
            return await self.get_response(request)
        if not decision.allowed:
            metrics.RATELIMIT_REJECTED.labels(route).inc()
            response: HttpResponseBase = problem_response(
                429,
                "rate limit exceeded",
                request_id=ctx.request_id,
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
