"""`type: jwt` providers: `Authorization: Bearer <token>`, verified by PyJWT.

The provider's `algorithms` are the only ones accepted ("none" is refused when
the file loads), so a token whose `alg` is not listed fails before any key is
used: an HS256 token signed with an RSA public key cannot pass an RS256
provider. `exp`/`nbf` are checked with a 30 s leeway, and a token without `exp`
is refused unless the provider says `require_exp: false`; issuer and audience
when configured. The key comes from `secret` (HS*), `public_key` (PEM) or
`jwks_url` (gateway/policies/auth/jwks.py).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

import jwt
from jwt.types import Options
from jwt.warnings import InsecureKeyLengthWarning

from gateway.policies.auth.base import (
    QUERY_PARAM,
    Authenticator,
    AuthError,
    Principal,
    ProviderConfig,
    provider_type,
    read_query_param,
)
from gateway.policies.auth.jwks import JwksKeys
from gateway.routes.keys import BOOL, HEADER, STRING, Key, MapOf, Section, Value

if TYPE_CHECKING:
    from gateway.routes.reader import Reader
    from gateway.routes.source import Node
    from gateway.runtime import Runtime

__all__ = ["KIND", "LEEWAY_SECONDS", "JwtAuthenticator", "JwtProvider"]

logger = logging.getLogger("gateway.auth")
LEEWAY_SECONDS = 30
# RFC 7518 3.2: an HMAC key at least as long as the hash.
_HMAC_MINIMUM = {"HS256": 32, "HS384": 48, "HS512": 64}
_HMAC = frozenset(_HMAC_MINIMUM)
_ASYMMETRIC = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
_KEY_SOURCES = ("jwks_url", "secret", "public_key")
# An Ed25519 public key: the schema's example of `public_key`.
_EXAMPLE_PEM = """-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEACVYMrZukuhW3FQ7X63Wkry4dhyExkYxV98Pml64suwg=
-----END PUBLIC KEY-----
"""
_ASYMMETRIC_EXAMPLE = {"algorithms": ["EdDSA"]}
SECTION = Section(
    (
        provider_type("jwt"),
        Key(
            name="algorithms",
            value=Value(
                {"type": "array", "items": {"enum": sorted(_HMAC | _ASYMMETRIC)}},
                ["HS256"],
                ["none"],
            ),
            required=True,
        ),
        Key(name="issuer", value=STRING),
        Key(name="audience", value=STRING),
        Key(
            name="jwks_url",
            value=STRING,
            example="https://idp.example/jwks",
            needs=_ASYMMETRIC_EXAMPLE,
            drops=("secret",),
        ),
        Key(name="secret", value=STRING, example="s" * 32),
        Key(
            name="public_key",
            value=STRING,
            example=_EXAMPLE_PEM,
            needs=_ASYMMETRIC_EXAMPLE,
            drops=("secret",),
        ),
        Key(name="scopes_claim", value=STRING),
        Key(name="identity_claim", value=STRING),
        Key(name="plan_claim", value=STRING, example="plan"),  # names the plan (SPEC 3.16)
        Key(name="claims_to_headers", value=MapOf(HEADER, "tenant")),
        Key(name="require_exp", value=BOOL),
        Key(name="query_param", value=QUERY_PARAM),
    ),
    extra={"oneOf": [{"required": [k]} for k in _KEY_SOURCES]},
    sample={"type": "jwt", "algorithms": ["HS256"], "secret": "s" * 32},
)


@dataclass(frozen=True, slots=True, kw_only=True)
class JwtProvider:
    name: str
    algorithms: tuple[str, ...]
    issuer: str | None = None
    audience: str | None = None
    jwks_url: str | None = None
    secret: str | None = None
    public_key: str | None = None
    scopes_claim: str = "scope"
    identity_claim: str = "sub"
    plan_claim: str | None = None
    claims_to_headers: tuple[tuple[str, str], ...] = ()  # (claim, lower-case header)
    require_exp: bool = True  # a token without `exp` is refused
    query_param: str | None = None  # the token may also come in this query parameter
    type: Literal["jwt"] = "jwt"


class JwtAuthenticator:
    credential_header = b"authorization"
    challenge = 'Bearer realm="gateway"'

    def __init__(self, provider: JwtProvider, jwks: JwksKeys | None) -> None:
        self.name = provider.name
        self.query_param = provider.query_param
        self._provider = provider
        self._algorithms = list(provider.algorithms)
        self._jwks = jwks
        self._static_key: Any = None
        # Short keys are reported once, here, when the provider is built; PyJWT
        # would otherwise warn on every decode. (Set on every build, not at
        # import: an import inside a catch_warnings block would lose it.)
        warnings.filterwarnings("ignore", category=InsecureKeyLengthWarning)
        if provider.secret is not None:
            self._static_key = provider.secret
            minimum = max(_HMAC_MINIMUM.get(a, 0) for a in provider.algorithms)
            if len(provider.secret.encode()) < minimum:
                logger.warning(
                    "auth provider %r: HMAC secret shorter than %d bytes (RFC 7518 3.2)",
                    provider.name,
                    minimum,
                )
        elif provider.public_key is not None:
            from cryptography.hazmat.primitives.serialization import load_pem_public_key

            self._static_key = load_pem_public_key(provider.public_key.encode())
        self._options: Options = {
            "verify_aud": provider.audience is not None,
            "require": ["exp"] if provider.require_exp else [],
        }
        self._claim_headers = tuple(
            (claim, header.encode()) for claim, header in provider.claims_to_headers
        )
        self.owned_headers = frozenset(header for _, header in self._claim_headers)

    async def authenticate(self, credential: str, *, in_query: bool = False) -> Principal:
        token = credential.strip()
        if not in_query:
            scheme, _, token = credential.partition(" ")
            token = token.strip()
            if scheme.lower() != "bearer":
                raise AuthError("expected a Bearer token")
        if not token:
            raise AuthError("expected a Bearer token")
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") not in self._algorithms:
                raise AuthError("token algorithm not accepted")
            key = self._static_key
            if self._jwks is not None:
                kid = header.get("kid")
                key = await self._jwks.key(kid if isinstance(kid, str) else None)
            claims = jwt.decode(
                token,
                key,
                algorithms=self._algorithms,
                audience=self._provider.audience,
                issuer=self._provider.issuer,
                leeway=LEEWAY_SECONDS,
                options=self._options,
            )
        except jwt.PyJWTError as exc:
            raise AuthError(f"invalid token: {_reason(exc)}") from None
        return self._principal(claims)

    def _principal(self, claims: Mapping[str, Any]) -> Principal:
        identity = claims.get(self._provider.identity_claim)
        if not isinstance(identity, str | int) or isinstance(identity, bool) or identity == "":
            raise AuthError(f"token has no {self._provider.identity_claim!r} claim")
        raw_scopes = claims.get(self._provider.scopes_claim, ())
        if isinstance(raw_scopes, str):
            scopes = frozenset(raw_scopes.split())
        elif isinstance(raw_scopes, list):
            scopes = frozenset(s for s in raw_scopes if isinstance(s, str))
        else:
            scopes = frozenset()
        headers = []
        for claim, header in self._claim_headers:
            value = claims.get(claim)
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                text = str(value)
                if text.isprintable():
                    headers.append((header, text.encode()))
        plan: str | None = None
        if (plan_claim := self._provider.plan_claim) is not None:
            named = claims.get(plan_claim)
            # No claim: the default plan, if any. Anything but a known plan's
            # name (a number, a list) is an unknown plan: refused, never unlimited.
            plan = None if named is None else named if isinstance(named, str) else repr(named)
        return Principal(
            str(identity), self.name, scopes, tuple(headers), MappingProxyType(claims), plan
        )


def _reason(exc: jwt.PyJWTError) -> str:
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"no {exc.claim!r} claim"
    reasons: dict[type[jwt.PyJWTError], str] = {
        jwt.ExpiredSignatureError: "expired",
        jwt.ImmatureSignatureError: "not valid yet",
        jwt.InvalidAudienceError: "wrong audience",
        jwt.InvalidIssuerError: "wrong issuer",
        jwt.InvalidSignatureError: "bad signature",
        jwt.InvalidAlgorithmError: "algorithm not accepted",
    }
    return reasons.get(type(exc), "malformed")


# --- the routes file -------------------------------------------------------------
def _read(r: Reader, name: str, node: Node) -> JwtProvider | None:
    where = f"auth provider {name!r}"
    fields = SECTION.fields(r, node, where)
    if fields is None or "algorithms" not in fields:
        return None
    algorithms = _read_algorithms(r, fields["algorithms"], where)
    source = _read_key_source(r, node, fields, where, algorithms)
    text = {k: r.string(fields[k], f"{where}: {k}") for k in ("issuer", "audience") if k in fields}
    claims: tuple[tuple[str, str], ...] | None = ()
    if "claims_to_headers" in fields:
        claims = _read_claim_headers(r, fields["claims_to_headers"], where)
    names = {
        k: r.string(fields[k], f"{where}: {k}") if k in fields else default
        for k, default in (("scopes_claim", "scope"), ("identity_claim", "sub"))
    }
    plan_claim = (
        r.string(fields["plan_claim"], f"{where}: plan_claim") if "plan_claim" in fields else None
    )
    require_exp = True
    if "require_exp" in fields:
        require_exp = r.boolean(fields["require_exp"], f"{where}: require_exp") is not False
    if algorithms is None or source is None or claims is None:
        return None
    if None in text.values() or None in names.values():
        return None
    return JwtProvider(
        name=name,
        algorithms=algorithms,
        issuer=text.get("issuer"),
        audience=text.get("audience"),
        jwks_url=source[1] if source[0] == "jwks_url" else None,
        secret=source[1] if source[0] == "secret" else None,
        public_key=source[1] if source[0] == "public_key" else None,
        scopes_claim=names["scopes_claim"] or "scope",
        identity_claim=names["identity_claim"] or "sub",
        plan_claim=plan_claim,
        claims_to_headers=claims,
        require_exp=require_exp,
        query_param=read_query_param(r, fields, where),
    )


def _read_algorithms(r: Reader, node: Node, where: str) -> tuple[str, ...] | None:
    algorithms = r.strings(node, f"{where}: algorithms")
    if not algorithms:
        return None
    ok = True
    for alg in algorithms:
        if alg.lower() == "none":
            r.error(node, f"{where}: algorithms", "'none' is never accepted")
            ok = False
        elif alg not in _HMAC | _ASYMMETRIC:
            r.error(node, f"{where}: algorithms", f"unknown algorithm {alg!r}")
            ok = False
    return tuple(algorithms) if ok else None


def _read_key_source(
    r: Reader,
    node: Node,
    fields: Mapping[str, Node],
    where: str,
    algorithms: tuple[str, ...] | None,
) -> tuple[str, str] | None:
    """(which of jwks_url / secret / public_key, its value), checked against
    the algorithms it must serve."""
    sources = [k for k in _KEY_SOURCES if k in fields]
    if len(sources) != 1:
        r.error(node, where, "needs exactly one of 'jwks_url', 'secret' or 'public_key'")
        return None
    source = sources[0]
    value = r.string(fields[source], f"{where}: {source}")
    if value is None or algorithms is None:
        return None
    if source == "secret" and not set(algorithms) <= _HMAC:
        message = "a 'secret' works only with HS256/384/512"
        r.error(fields["algorithms"], f"{where}: algorithms", message)
        return None
    if source != "secret" and not set(algorithms) <= _ASYMMETRIC:
        message = f"HS* algorithms need a 'secret', not {source!r}"
        r.error(fields["algorithms"], f"{where}: algorithms", message)
        return None
    if source == "public_key" and not _loads_public_key(value):
        message = "not a PEM public key (RSA, EC or Ed25519)"
        r.error(fields[source], f"{where}: public_key", message)
        return None
    if source == "jwks_url" and not value.startswith(("http://", "https://")):
        r.error(fields[source], f"{where}: jwks_url", "must be an http(s) URL")
        return None
    return source, value


def _loads_public_key(pem: str) -> bool:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        load_pem_public_key(pem.encode())
    except (ValueError, TypeError):
        return False
    return True


def _read_claim_headers(r: Reader, node: Node, where: str) -> tuple[tuple[str, str], ...] | None:
    claims = r.string_map(node, f"{where}: claims_to_headers")
    if claims is None:
        return None
    out = []
    for claim, header in claims.items():
        line = node.key_lines.get(claim, node.line)
        name = r.owned_header(type(node)(header, line), f"{where}: claims_to_headers.{claim}")
        if name is None:
            return None
        out.append((claim, name))
    return tuple(out)


class _Kind:
    type = "jwt"
    section = SECTION

    def read(self, r: Reader, name: str, node: Node) -> ProviderConfig | None:
        return _read(r, name, node)

    def build(self, config: ProviderConfig, runtime: Runtime) -> Authenticator:
        assert isinstance(config, JwtProvider)
        jwks = None
        if (url := config.jwks_url) is not None:
            jwks = runtime.keep(("jwks", url), lambda: JwksKeys(url, runtime.own_client()))
        return JwtAuthenticator(config, jwks)


KIND = _Kind()
