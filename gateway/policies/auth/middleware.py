"""Auth (SPEC 3.4): on a route with `auth`, a request needs a valid credential
of one of its providers (401 with WWW-Authenticate otherwise) and every scope
the route lists (403). The identity and the headers the provider sets for
backends go into the envelope; nothing the client sent can stand in for them
(the pipeline drops client copies of those headers).

`admit` is the check itself, for any request that has an envelope and
headers: the middleware runs it for HTTP, the WebSocket entry on a handshake.
A credential comes in the provider's header or, when the provider has a
`query_param`, in that query parameter (the header wins); the handler took
query credentials out of the query string before anything else saw it.
"""

from __future__ import annotations

from typing import cast

from django.http import HttpRequest
from django.http.response import HttpResponseBase

from gateway.edge.middleware import AsyncMiddleware
from gateway.envelope import Envelope, GatewayRequest
from gateway.errors import Forbidden, GatewayError, Unauthorized, Unavailable, error_response
from gateway.policies.auth import AuthError, AuthUnavailable, Principal

__all__ = ["AuthMiddleware", "admit"]


async def admit(envelope: Envelope, headers: list[tuple[bytes, bytes]]) -> None:
    """Raise Unauthorized (401), Forbidden (403) or Unavailable (503), or set
    the envelope's identity."""
    if envelope.policy is None or envelope.policy.auth is None:
        return
    policy = envelope.policy.auth
    principal: Principal | None = None
    problem: str | None = None  # why a presented credential was refused
    unavailable = False
    for authenticator in policy.authenticators:
        credential = next((v for n, v in headers if n == authenticator.credential_header), None)
        in_query = credential is None
        text = credential.decode("latin-1") if credential is not None else None
        if text is None and (text := envelope.query_credentials.get(authenticator.name)) is None:
            continue
        try:
            principal = await authenticator.authenticate(text, in_query=in_query)
            break
        except AuthError as exc:
            problem = str(exc)
        except AuthUnavailable:
            unavailable = True
    if principal is None:
        if unavailable and problem is None:
            raise Unavailable("credentials cannot be checked right now")
        raise Unauthorized(problem or "missing credentials", challenge=policy.challenge)
    if not policy.scopes <= principal.scopes:
        missing = ", ".join(sorted(policy.scopes - principal.scopes))
        raise Forbidden(f"missing scope: {missing}")
    envelope.identity = principal.identity
    envelope.provider = principal.provider
    envelope.identity_headers = principal.headers
    envelope.claims = principal.claims


class AuthMiddleware(AsyncMiddleware):
    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        envelope = cast(GatewayRequest, request).envelope
        if envelope.policy is None or envelope.policy.auth is None:
            return await self.get_response(request)
        try:
            await admit(envelope, cast(GatewayRequest, request).scope["headers"])
        except GatewayError as exc:
            return error_response(exc, request_id=envelope.request_id, route=envelope.route_name)
        return await self.get_response(request)
