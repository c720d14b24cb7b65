"""`type: api_key` providers: a key in a header, compared in constant time.

Keys are compared as SHA-256 digests, against every key of the provider (no
early exit), so neither a key nor its position leaks through timing. Plain
keys in the routes file are hashed when it loads; `sha256:` gives the digest.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from gateway.policies.auth.base import (
    QUERY_PARAM,
    Authenticator,
    AuthError,
    Principal,
    ProviderConfig,
    provider_type,
    read_query_param,
)
from gateway.routes.keys import HEADER, STRING, STRINGS, Key, ListOf, Section, Value, var_or

if TYPE_CHECKING:
    from gateway.routes.reader import Reader
    from gateway.routes.source import Node
    from gateway.runtime import Runtime

__all__ = ["KIND", "ApiKey", "ApiKeyAuthenticator", "ApiKeyProvider"]

_HEX_DIGEST = re.compile(r"[0-9a-fA-F]{64}")
_SHA256 = Value(var_or({"type": "string", "pattern": "^[0-9a-fA-F]{64}$"}), "ab" * 32, "abc")
KEY = Section(
    (
        Key(name="id", value=STRING, required=True, example="alice"),
        Key(name="key", value=STRING),
        Key(name="sha256", value=_SHA256, drops=("key",)),
        Key(name="scopes", value=STRINGS),
        Key(name="plan", value=STRING, example="pro"),  # a name in `plans:` (SPEC 3.16)
    ),
    extra={"oneOf": [{"required": ["key"]}, {"required": ["sha256"]}]},
    sample={"id": "alice", "key": "alice-key"},
)
SECTION = Section(
    (
        provider_type("api_key"),
        Key(name="header", value=HEADER),
        Key(name="keys", value=ListOf(KEY), required=True),
        Key(name="identity_header", value=HEADER),
        Key(name="query_param", value=QUERY_PARAM),
    )
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiKey:
    id: str
    digest: bytes  # sha256 of the key; plain keys are hashed at load time
    scopes: frozenset[str] = frozenset()
    plan: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiKeyProvider:
    name: str
    header: str = "x-api-key"  # lower-case, for lookups
    header_display: str = "X-API-Key"  # as written, for WWW-Authenticate
    keys: tuple[ApiKey, ...] = ()
    identity_header: str | None = None
    query_param: str | None = None
    type: Literal["api_key"] = "api_key"


class ApiKeyAuthenticator:
    def __init__(self, provider: ApiKeyProvider) -> None:
        self.name = provider.name
        self.credential_header = provider.header.encode()
        self.query_param = provider.query_param
        self.challenge = f'ApiKey header="{provider.header_display}"'
        self._keys = provider.keys
        self._identity_header = (
            provider.identity_header.encode() if provider.identity_header else None
        )
        self.owned_headers = frozenset({self._identity_header} if self._identity_header else ())

    async def authenticate(self, credential: str, *, in_query: bool = False) -> Principal:
        digest = hashlib.sha256(credential.encode()).digest()
        found = None
        for key in self._keys:  # no early exit: constant time over the whole list
            if hmac.compare_digest(digest, key.digest) and found is None:
                found = key
        if found is None:
            raise AuthError("invalid API key")
        headers = ((self._identity_header, found.id.encode()),) if self._identity_header else ()
        return Principal(found.id, self.name, found.scopes, headers, plan=found.plan)


# --- the routes file -------------------------------------------------------------
def _read(r: Reader, name: str, node: Node) -> ApiKeyProvider | None:
    where = f"auth provider {name!r}"
    fields = SECTION.fields(r, node, where)
    if fields is None or "keys" not in fields:
        return None
    header, display = "x-api-key", "X-API-Key"
    if "header" in fields and (lower := r.header_name(fields["header"], f"{where}: header")):
        header, display = lower, str(fields["header"].value)
    identity = None
    if "identity_header" in fields:
        identity = r.owned_header(fields["identity_header"], f"{where}: identity_header")
    keys = _read_keys(r, fields["keys"], where)
    return ApiKeyProvider(
        name=name,
        header=header,
        header_display=display,
        keys=keys,
        identity_header=identity,
        query_param=read_query_param(r, fields, where),
    )


def _read_keys(r: Reader, node: Node, where: str) -> tuple[ApiKey, ...]:
    keys: list[ApiKey] = []
    seen_ids: set[str] = set()
    seen_digests: set[bytes] = set()
    for i, key_node in enumerate(r.listing(node, f"{where}: keys") or []):
        key = _read_key(r, key_node, f"{where}: keys[{i}]")
        if key is None:
            continue
        if key.id in seen_ids:
            r.error(key_node, f"{where}: keys[{i}].id", f"duplicate key id {key.id!r}")
        elif key.digest in seen_digests:
            r.error(key_node, f"{where}: keys[{i}]", "the same key is listed twice")
        else:
            seen_ids.add(key.id)
            seen_digests.add(key.digest)
            keys.append(key)
    return tuple(keys)


def _read_key(r: Reader, node: Node, where: str) -> ApiKey | None:
    fields = KEY.fields(r, node, where)
    if fields is None or "id" not in fields:
        return None
    key_id = r.string(fields["id"], f"{where}.id")
    if ("key" in fields) == ("sha256" in fields):
        r.error(node, where, "needs exactly one of 'key' or 'sha256'")
        return None
    digest: bytes | None = None
    if "key" in fields and (plain := r.string(fields["key"], f"{where}.key")):
        digest = hashlib.sha256(plain.encode()).digest()
    elif "sha256" in fields and (hexdigest := r.string(fields["sha256"], f"{where}.sha256")):
        if _HEX_DIGEST.fullmatch(hexdigest.strip()):
            digest = bytes.fromhex(hexdigest.strip())
        else:
            r.error(fields["sha256"], f"{where}.sha256", "must be 64 hexadecimal characters")
    scopes = r.strings(fields["scopes"], f"{where}.scopes") if "scopes" in fields else []
    plan = r.string(fields["plan"], f"{where}.plan") if "plan" in fields else None
    if key_id is None or digest is None or scopes is None:
        return None
    return ApiKey(id=key_id, digest=digest, scopes=frozenset(scopes), plan=plan)


class _Kind:
    type = "api_key"
    section = SECTION

    def read(self, r: Reader, name: str, node: Node) -> ProviderConfig | None:
        return _read(r, name, node)

    def build(self, config: ProviderConfig, runtime: Runtime) -> Authenticator:
        assert isinstance(config, ApiKeyProvider)
        return ApiKeyAuthenticator(config)


KIND = _Kind()
