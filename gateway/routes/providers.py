"""The `auth:` section: named providers, each read by its kind's module
(gateway/policies/auth: one module per `type:`)."""

from __future__ import annotations

from gateway.policies.auth import KINDS
from gateway.routes.model import ProviderConfig
from gateway.routes.reader import NAME, Reader, did_you_mean
from gateway.routes.source import Node

__all__ = ["read_auth_provider"]


def read_auth_provider(r: Reader, name: str, node: Node) -> ProviderConfig | None:
    where = f"auth provider {name!r}"
    if not NAME.fullmatch(name):
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
