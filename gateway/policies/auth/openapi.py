"""What auth adds to the OpenAPI document (SPEC 3.15): each provider as a
security scheme (its header, or a bearer JWT, and its query parameter when
it has one); on each route that has `auth`, the schemes and scopes it
accepts, a note naming the credential, and the 401 / 403 it may answer."""

from __future__ import annotations

from typing import Any

from gateway.policies.auth import OPTION, providers_of
from gateway.routes.model import Route, RouteTable
from gateway.routes.openapi import Description

__all__ = ["describe", "describe_document"]


def describe(route: Route, description: Description) -> None:
    rule = OPTION.of(route)
    if rule is None:
        return
    table = description.table
    scopes = sorted(rule.scopes)
    schemes = [scheme for name in rule.providers for scheme in _schemes_of(name, table)]
    description.security += [{scheme: scopes} for scheme in schemes]
    who = " or ".join(_credential_of(name, table) for name in rule.providers)
    description.notes.append(
        f"Needs {who}" + (f", with scopes {', '.join(scopes)}." if scopes else ".")
    )
    description.listing.update(auth=schemes, scopes=scopes)
    description.refusal(401, "Missing or invalid credentials")
    if rule.scopes:
        description.refusal(403, "A required scope is missing")


def describe_document(table: RouteTable, document: dict[str, Any]) -> None:
    schemes: dict[str, Any] = document["components"]["securitySchemes"]
    for name, config in providers_of(table).items():
        if config.type == "jwt":
            schemes[name] = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
        else:
            header = getattr(config, "header_display", "X-API-Key")
            schemes[name] = {"type": "apiKey", "in": "header", "name": header}
        query = getattr(config, "query_param", None)
        if query:
            schemes[f"{name}-query"] = {"type": "apiKey", "in": "query", "name": query}


def _credential_of(provider: str, table: RouteTable) -> str:
    config = providers_of(table)[provider]
    if config.type == "jwt":
        where = "Authorization: Bearer <JWT>"
    else:
        where = f"{getattr(config, 'header_display', 'X-API-Key')}: <API key>"
    query = getattr(config, "query_param", None)
    return f"`{where}`" + (f" (or `?{query}=`)" if query else "")


def _schemes_of(provider: str, table: RouteTable) -> list[str]:
    schemes = [provider]
    if getattr(providers_of(table)[provider], "query_param", None):
        schemes.append(f"{provider}-query")
    return schemes
