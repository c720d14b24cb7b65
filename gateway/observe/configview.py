"""The loaded routes as JSON for the admin listener's /config (SPEC 3.14),
with every secret replaced by "***":

- API keys and their digests, JWT secrets, and the values of upstreams'
  static headers, whatever they hold;
- every value `${NAME}` took from the environment, wherever it landed (a
  backend's query, a JWKS URL, an upstream's URL: an upstream whose host came
  from the environment is shown as "***" whole);
- the userinfo and the query of every URL (`https://u:p@host/x?token=...`
  becomes `https://***@host/x?***`).

Built from the frozen model (what is actually serving), not from the file on
disk (which may hold an edit that was refused). Whatever is bytes in the
model is a digest or a key, so bytes are always shown as "***".
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Mapping
from typing import Any

from gateway.routes.model import Hook, PathSegment, Route, RouteTable, Template, Upstream

__all__ = ["SECRET", "config_document", "mask_text"]

SECRET = "***"  # noqa: S105 - the mask shown instead of a secret
_SECRET_FIELDS = frozenset({"secret", "digest"})  # JWT secrets, API key digests
_SKIPPED = frozenset({"segments", "line", "secrets"})  # derived, where it was written, the secrets
# scheme://[userinfo@]rest[?query][#fragment], anywhere in a string
_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<rest>[^\s\"'<>]*)")
# Shorter values are masked where they are a whole value, not inside others
# (an environment's "1" must not turn /v1/ into /v***/).
_SEARCHED = 4


def mask_text(text: str, secrets: Collection[str]) -> str:
    """`text` with every secret, and every URL's userinfo and query, as ***."""
    if text in secrets:
        return SECRET
    for secret in sorted(secrets, key=len, reverse=True):  # the longest first
        if len(secret) >= _SEARCHED and secret in text:
            text = text.replace(secret, SECRET)
    if "://" in text:
        text = _URL.sub(_mask_url, text)
    return text


def _mask_url(match: re.Match[str]) -> str:
    rest = match["rest"]
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        authority = SECRET + "@" + authority.rpartition("@")[2]
    path = slash + path
    for mark in ("?", "#"):
        if mark in authority:  # no path: the query follows the host
            authority, _, tail = authority.partition(mark)
            path = mark + tail + path
    if "?" in path:
        before, _, after = path.partition("?")
        fragment = "#" + after.partition("#")[2] if "#" in after else ""
        path = f"{before}?{SECRET}{fragment}"
    return match["scheme"] + authority + path


def config_document(
    table: RouteTable, targets: Mapping[str, list[dict[str, Any]]] | None = None
) -> dict[str, Any]:
    """`targets`: each upstream's targets as they are now (state, calls in
    flight), shown beside its definition."""
    secrets = table.secrets
    upstreams = {name: _upstream(u, secrets) for name, u in table.upstreams.items()}
    for name, states in (targets or {}).items():
        if name in upstreams:
            upstreams[name]["target_state"] = [
                {**s, "url": mask_text(str(s["url"]), secrets)} for s in states
            ]
    return {
        "source": table.source,
        "settings": _plain(table.settings, secrets),
        "upstreams": upstreams,
        **{
            key: {name: _plain(entry, secrets) for name, entry in entries.items()}
            for key, entries in table.sections.items()
        },
        "hooks": _plain(table.hooks, secrets),
        "routes": [_route(r, secrets) for r in table.routes],
    }


def _upstream(upstream: Upstream, secrets: frozenset[str]) -> dict[str, Any]:
    out: dict[str, Any] = _plain(upstream, secrets)
    out["headers"] = {name: SECRET for name, _ in upstream.headers}
    if any(upstream.host in secret for secret in secrets):  # its URL came from ${...}
        for key in ("scheme", "host", "port", "base_path"):
            out[key] = SECRET
    for target, shown in zip(upstream.targets, out["targets"], strict=True):
        if any(target.host in secret for secret in secrets):
            shown["host"] = shown["port"] = SECRET
    return out


def _route(route: Route, secrets: frozenset[str]) -> dict[str, Any]:
    """The route's own keys, its policies' (by policy name), its kind's."""
    out: dict[str, Any] = _plain(route, secrets)
    out.pop("kind_name")
    out.update(out.pop("options"))
    out["kind"] = {"type": route.kind_name, **out.pop("kind")}
    return out


def _plain(value: Any, secrets: frozenset[str], name: str = "") -> Any:
    if name in _SECRET_FIELDS and value is not None:
        return SECRET
    if isinstance(value, bytes | bytearray):
        return SECRET
    if isinstance(value, Template):
        return mask_text(value.source, secrets)
    if isinstance(value, Hook):
        return value.name
    if isinstance(value, PathSegment):
        return value.literal
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            field.name: _plain(getattr(value, field.name), secrets, field.name)
            for field in dataclasses.fields(value)
            if field.name not in _SKIPPED and not field.name.startswith("_")
        }
    if isinstance(value, Mapping):
        return {mask_text(str(k), secrets): _plain(v, secrets) for k, v in value.items()}
    if isinstance(value, frozenset | set):
        return sorted(_plain(v, secrets) for v in value)
    if isinstance(value, tuple | list):
        return [_plain(v, secrets) for v in value]
    if isinstance(value, str):
        return mask_text(value, secrets)
    if value is None or isinstance(value, int | float | bool):
        return value
    return repr(value)
