"""Auth's stage (SPEC 3.4): on a route with `auth`, a request needs a valid
credential of one of its providers (401 with WWW-Authenticate otherwise) and
every scope the route lists (403). Who is asking, and the headers the
provider sets for backends, go into the envelope (`Envelope.caller`);
nothing the client sent can stand in for them (the route kinds drop client
copies of those headers).

A credential comes in the provider's header or, when the provider has a
`query_param`, in that query parameter (the header wins); the edge took
query credentials out of the query string before anything else saw it.
HTTP requests and WebSocket handshakes go through the same stage.
"""

from __future__ import annotations

from gateway.envelope import Caller, Envelope, RouteCall
from gateway.errors import Forbidden, Unauthorized, Unavailable
from gateway.policies.auth import (
    OPTION,
    AuthError,
    AuthUnavailable,
    Principal,
    RouteAuth,
    authenticators_of,
    build_route_auth,
    consumed_headers,
    owned_headers,
    query_credentials,
    secret_params,
)
from gateway.policies.auth.openapi import describe, describe_document
from gateway.routes.model import Route
from gateway.stack import Answer, BuildContext, Policy, RouteHandler, RouteStage

__all__ = ["POLICY", "admit", "auth_stage"]


async def admit(policy: RouteAuth, envelope: Envelope, headers: list[tuple[bytes, bytes]]) -> None:
    """Raise Unauthorized (401), Forbidden (403) or Unavailable (503), or say
    who is asking (`envelope.caller`)."""
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
    envelope.caller = Caller(
        principal.identity, principal.provider, principal.headers, principal.claims, principal.plan
    )


def auth_stage(route: Route, context: BuildContext) -> RouteStage | None:
    rule = OPTION.of(route)
    if rule is None:
        return None
    policy = build_route_auth(rule, authenticators_of(context))

    def stage(inner: RouteHandler) -> RouteHandler:
        async def handler(call: RouteCall) -> Answer:
            await admit(policy, call.envelope, call.scope["headers"])
            return await inner(call)

        return handler

    return stage


def _summary(route: Route) -> str | None:
    rule = OPTION.of(route)
    if rule is None:
        return None
    scopes = f" (scopes: {', '.join(sorted(rule.scopes))})" if rule.scopes else ""
    return "auth: " + " or ".join(rule.providers) + scopes


POLICY = Policy(
    name="auth",
    option=OPTION,
    stage=auth_stage,
    describe=describe,
    describe_document=describe_document,
    summary=_summary,
    owned_headers=owned_headers,
    consumed_headers=consumed_headers,
    query_credentials=query_credentials,
    secret_params=secret_params,
)
