"""What every auth provider kind shares: the Principal it yields, the errors it
raises, the Authenticator protocol it implements, and the ProviderKind protocol
its module exports as `KIND`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from gateway.routes.model import ProviderConfig
    from gateway.routes.reader import Reader
    from gateway.routes.source import Node
    from gateway.runtime import Runtime

__all__ = ["AuthError", "AuthUnavailable", "Authenticator", "Principal", "ProviderKind"]


@dataclass(frozen=True, slots=True)
class Principal:
    identity: str
    provider: str
    scopes: frozenset[str]
    headers: tuple[tuple[bytes, bytes], ...]  # identity headers for backends


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
    def owned_headers(self) -> frozenset[bytes]:
        """Headers it sets for backends: a client's own copies never pass."""
        ...

    async def authenticate(self, credential: str) -> Principal: ...


class ProviderKind(Protocol):
    """One `type:` of provider in the routes file."""

    @property
    def type(self) -> str: ...
    def read(self, r: Reader, name: str, node: Node) -> ProviderConfig | None: ...
    def build(self, config: ProviderConfig, runtime: Runtime) -> Authenticator: ...
