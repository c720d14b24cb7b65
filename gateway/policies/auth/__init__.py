"""Auth (SPEC 3.4): providers that turn a credential into an identity, and the
`auth` / `scopes` keys of a route that require one.

A provider kind is one module (api_key.py, jwt.py) with a `KIND`: its `type`
in the routes file, its section of the file, `read` (that section, into a
frozen config) and `build` (that config into an `Authenticator`).
Registering the module in KINDS below is all a new kind needs: the `auth:`
section, the route's stage (stage.py), the headers the route kinds drop and
the OpenAPI description (openapi.py) all go through the `Authenticator`
protocol.

No HTTP types here: the stage turns AuthError / AuthUnavailable into 401 /
503, and a missing scope into 403.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from gateway.policies.auth import api_key, jwt
from gateway.policies.auth.base import (
    Authenticator,
    AuthError,
    AuthUnavailable,
    Principal,
    ProviderConfig,
    ProviderKind,
)
from gateway.routes.keys import NAME, STRINGS, Key, MapOf, OneOf, Value
from gateway.routes.reader import NAME as NAME_PATTERN
from gateway.routes.reader import Reader, did_you_mean
from gateway.routes.vocabulary import Option, RouteContext, TopSection

if TYPE_CHECKING:
    from gateway.routes.model import Route, RouteTable
    from gateway.routes.source import Node
    from gateway.stack import BuildContext

__all__ = [
    "KINDS",
    "OPTION",
    "AuthError",
    "AuthRule",
    "AuthUnavailable",
    "Authenticator",
    "Principal",
    "ProviderKind",
    "RouteAuth",
    "authenticators_of",
    "build_authenticators",
    "build_route_auth",
    "providers_of",
]


# The provider kinds, by their `type:` in the routes file. A new kind: one
# module with a KIND, added here.
KINDS: Mapping[str, ProviderKind] = {kind.type: kind for kind in (api_key.KIND, jwt.KIND)}


# --- the routes file -------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AuthRule:
    """A route's `auth` (any one provider suffices) and `scopes` (all required)."""

    providers: tuple[str, ...]
    scopes: frozenset[str] = frozenset()


def _read_provider(r: Reader, name: str, node: Node) -> ProviderConfig | None:
    where = f"auth provider {name!r}"
    if not NAME_PATTERN.fullmatch(name):
        r.error(node, where, "names may use letters, digits, '_', '.', ':' and '-'")
    kinds = " or ".join(KINDS)
    if not isinstance(node.value, dict) or "type" not in node.value:
        r.error(node, where, f"missing required key 'type' ({kinds})")
        return None
    kind = KINDS.get(str(node.value["type"].value))
    if kind is None:
        written = str(node.value["type"].value)
        message = f"unknown type {written!r} ({kinds})" + did_you_mean(written, KINDS)
        r.error(node.value["type"], f"{where}: type", message)
        return None
    return kind.read(r, name, node)


def _read_providers(r: Reader, node: Node) -> Mapping[str, ProviderConfig]:
    if node.value is None:
        return MappingProxyType({})
    if not isinstance(node.value, dict):
        r.error(node, "auth", f"expected a mapping of names, got {node.kind}")
        return MappingProxyType({})
    out = {}
    for name, child in node.value.items():
        if (config := _read_provider(r, name, child)) is not None:
            out[name] = config
    return MappingProxyType(out)


PROVIDERS = TopSection(
    key="auth",
    value=MapOf(OneOf(tuple((kind.type, kind.section) for kind in KINDS.values()))),
    read=_read_providers,
)


def _read(r: Reader, fields: Mapping[str, Node], ctx: RouteContext) -> AuthRule | None:
    """Who may call the route: its auth providers (any one) and scopes (all)."""
    providers: list[str] = []
    if "auth" in fields:
        known = ctx.names.get("auth", ())
        providers = r.strings(fields["auth"], ctx.at("auth"), single_ok=True) or []
        for provider in providers:
            if provider not in known:
                hint = did_you_mean(provider, known)
                message = f"unknown auth provider {provider!r}{hint}"
                r.error(fields["auth"], ctx.at("auth"), message)
    scopes: list[str] = []
    if "scopes" in fields:
        scopes = r.strings(fields["scopes"], ctx.at("scopes")) or []
        if scopes and not providers:
            r.error(fields["scopes"], ctx.at("scopes"), "scopes need 'auth' on the route")
    if not providers:
        return None
    return AuthRule(tuple(providers), frozenset(scopes))


OPTION = Option[AuthRule](
    name="auth",
    keys=(
        Key(
            name="auth",
            value=Value(
                {"anyOf": [NAME.schema, {"type": "array", "items": NAME.schema}]},
                "api_key",
                "no such!",
            ),
        ),
        Key(name="scopes", value=STRINGS, example=["read"], needs={"auth": "api_key"}),
    ),
    read=_read,
    sections=(PROVIDERS,),
)


def providers_of(table: RouteTable) -> Mapping[str, ProviderConfig]:
    """The `auth:` section: every provider, by name."""
    return table.sections.get("auth", MappingProxyType({}))


# --- built per table and per route ------------------------------------------------
@dataclass(frozen=True, slots=True)
class RouteAuth:
    authenticators: tuple[Authenticator, ...]  # any one suffices, tried in this order
    scopes: frozenset[str]  # all required
    challenge: str  # WWW-Authenticate
    query_params: Mapping[str, str]  # query parameter -> provider: taken out of the query


def build_authenticators(table: RouteTable, runtime: Any) -> dict[str, Authenticator]:
    """Every provider of the table, built once."""
    return {
        name: KINDS[config.type].build(config, runtime)
        for name, config in providers_of(table).items()
    }


def authenticators_of(context: BuildContext) -> Mapping[str, Authenticator]:
    """The table's providers, built for the first route that needs them."""
    return context.once(
        ("auth", "authenticators"),
        lambda: build_authenticators(context.table, context.runtime),
    )


def build_route_auth(rule: AuthRule, authenticators: Mapping[str, Authenticator]) -> RouteAuth:
    chosen = tuple(authenticators[name] for name in rule.providers)
    challenge = ", ".join(dict.fromkeys(a.challenge for a in chosen))
    params: dict[str, str] = {}
    for a in chosen:
        if a.query_param is not None:
            params.setdefault(a.query_param, a.name)
    return RouteAuth(chosen, rule.scopes, challenge, params)


def owned_headers(context: BuildContext) -> Collection[bytes]:
    """Every header any provider sets for backends: dropped from every client
    request on every route, so no upstream is ever handed a forged identity."""
    return frozenset().union(*(a.owned_headers for a in authenticators_of(context).values()))


def consumed_headers(route: Route, context: BuildContext) -> Collection[bytes]:
    """The credentials this route's providers read: not forwarded unless a
    forward_headers list names them."""
    rule = OPTION.of(route)
    if rule is None:
        return ()
    found = authenticators_of(context)
    return frozenset(found[name].credential_header for name in rule.providers)


def query_credentials(route: Route, context: BuildContext) -> Mapping[str, str]:
    rule = OPTION.of(route)
    if rule is None:
        return {}
    return build_route_auth(rule, authenticators_of(context)).query_params


def secret_params(context: BuildContext) -> Collection[str]:
    """Every provider's query parameter: redacted wherever a query is logged."""
    return frozenset(
        a.query_param for a in authenticators_of(context).values() if a.query_param is not None
    )
