"""Auth (SPEC 3.4): on a route with `auth`, a request needs a valid credential
of one of its providers (401 with WWW-Authenticate otherwise) and every scope
the route lists (403). The identity and the headers the provider sets for
backends go into the request context; nothing the client sent can stand in
for them (the pipeline drops client copies of those headers)."""

from __future__ import annotations

from typing import cast

from django.http import HttpRequest
from django.http.response import HttpResponseBase

from gateway.edge.middleware import AsyncMiddleware
from gateway.envelope import GatewayRequest
from gateway.errors import problem_response
from gateway.policies.auth import AuthError, AuthUnavailable, Principal

__all__ = ["AuthMiddleware"]


class AuthMiddleware(AsyncMiddleware):
    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        envelope = cast(GatewayRequest, request).envelope
        if envelope.policy is None or envelope.policy.auth is None:
            return await self.get_response(request)
        route, policy = envelope.route_name, envelope.policy.auth
        headers = cast(GatewayRequest, request).scope["headers"]
        principal: Principal | None = None
        problem: str | None = None  # why a presented credential was refused
        unavailable = False
        for authenticator in policy.authenticators:
            credential = next((v for n, v in headers if n == authenticator.credential_header), None)
            if credential is None:
                continue
            try:
                principal = await authenticator.authenticate(credential.decode("latin-1"))
                break
            except AuthError as exc:
                problem = str(exc)
            except AuthUnavailable:
                unavailable = True
        if principal is None:
            if unavailable and problem is None:
                return problem_response(
                    503,
                    "credentials cannot be checked right now",
                    request_id=envelope.request_id,
                    route=route,
                )
            return problem_response(
                401,
                problem or "missing credentials",
                request_id=envelope.request_id,
                route=route,
                slug="unauthorized",
                headers={"WWW-Authenticate": policy.challenge},
            )
        if not policy.scopes <= principal.scopes:
            missing = ", ".join(sorted(policy.scopes - principal.scopes))
            return problem_response(
                403,
                f"missing scope: {missing}",
                request_id=envelope.request_id,
                route=route,
                slug="forbidden",
            )
        envelope.identity = principal.identity
        envelope.provider = principal.provider
        envelope.identity_headers = principal.headers
        return await self.get_response(request)
