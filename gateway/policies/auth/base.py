"""What every auth provider kind shares: the Principal it yields, the errors it
raises, the Authenticator protocol it implements, the ProviderKind protocol
its module exports as `KIND` (its `type:`, its section of the routes file,
its reader and builder), and the keys every kind has."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from gateway.routes.keys import Key, Value

if TYPE_CHECKING:
    from gateway.routes.keys import Section
    from gateway.routes.reader import Reader
    from gateway.routes.source import Node
    from gateway.runtime import Runtime

__all__ = [
    "QUERY_PARAM",
    "AuthError",
    "AuthUnavailable",
    "Authenticator",
    "Principal",
    "ProviderConfig",
    "ProviderKind",
    "provider_type",
    "read_query_param",
]

# RFC 3986 unreserved characters: a name that needs no encoding anywhere.
_QUERY_NAME = re.compile(r"[A-Za-z0-9._~-]{1,100}")
QUERY_PARAM = Value({"type": "string", "pattern": "^[A-Za-z0-9._~-]{1,100}$"}, "key", "a key")


def provider_type(name: str) -> Key:
    """The `type:` key of a provider of this kind."""
    return Key(name="type", value=Value({"const": name}, name, "no-such-type"), required=True)


class ProviderConfig(Protocol):
    """A provider's section of the routes file, as its kind read it (each kind
    has its own frozen config type)."""

    @property
    def name(self) -> str: ...
    @property
    def type(self) -> str: ...


NO_CLAIMS: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Principal:
    identity: str
    provider: str
    scopes: frozenset[str]
    headers: tuple[tuple[bytes, bytes], ...]  # identity headers for backends
    claims: Mapping[str, Any] = NO_CLAIMS  # a JWT's verified claims (read-only)
    plan: str | None = None  # the plan an API key or a token's plan_claim names


class AuthError(Exception):
    """The credential is missing or invalid (401)."""


class AuthUnavailable(Exception):
    """The credential cannot be checked right now, e.g. no JWKS keys yet (503)."""


class Authenticator(Protocol):
    """One configured provider, ready to check credentials."""

    @property
    def name(self) -> str: ...
    @property
    def challenge(self) -> str:
        """The WWW-Authenticate value of a 401."""
        ...

    @property
    def credential_header(self) -> bytes:
        """The request header it reads (lower-case); never forwarded unless named."""
        ...

    @property
    def query_param(self) -> str | None:
        """The query parameter its credential may also come in (browsers cannot
        set headers on WebSocket or EventSource requests); never forwarded."""
        ...

    @property
    def owned_headers(self) -> frozenset[bytes]:
        """Headers it sets for backends: a client's own copies never pass."""
        ...

    async def authenticate(self, credential: str, *, in_query: bool = False) -> Principal:
        """`credential` as the header carried it, or (`in_query`) the query
        parameter's decoded value."""
        ...


class ProviderKind(Protocol):
    """One `type:` of provider in the routes file."""

    @property
    def type(self) -> str: ...
    @property
    def section(self) -> Section: ...
    def read(self, r: Reader, name: str, node: Node) -> ProviderConfig | None: ...
    def build(self, config: ProviderConfig, runtime: Runtime) -> Authenticator: ...


def read_query_param(r: Reader, fields: Mapping[str, Node], where: str) -> str | None:
    """A provider's optional `query_param`: a name that needs no encoding."""
    if "query_param" not in fields:
        return None
    name = r.string(fields["query_param"], f"{where}: query_param")
    if name is not None and not _QUERY_NAME.fullmatch(name):
        message = "use letters, digits, '.', '_', '~' and '-' (up to 100)"
        r.error(fields["query_param"], f"{where}: query_param", message)
        return None
    return name
