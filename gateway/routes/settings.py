"""The `settings:` section, and the list of forwarded headers that routes'
backends share with it."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from types import MappingProxyType
from typing import Any

from gateway.routes.keys import DURATION, HEADERS, INT, SIZE, Key, Section
from gateway.routes.model import GatewaySettings
from gateway.routes.reader import NOT_FORWARDABLE, Reader
from gateway.routes.source import Node
from gateway.routes.vocabulary import RouteContext, Vocabulary

__all__ = ["SETTINGS", "read_forward_headers", "read_settings", "settings_section"]

SETTINGS = Section(
    (
        Key(name="timeout", value=DURATION),
        Key(name="max_body_size", value=SIZE),
        Key(name="max_response_size", value=SIZE),
        Key(name="forward_headers", value=HEADERS),
        Key(name="max_streams_per_client", value=INT),
    )
)


def settings_section(vocabulary: Vocabulary) -> Section:
    """The core settings and, for each policy that has one, its default."""
    return SETTINGS.plus(
        *(option.keys[0] for option in vocabulary.settings_options),
        *(key for option in vocabulary.settings_only for key in option.settings_keys),
    )


def read_forward_headers(r: Reader, node: Node, where: str) -> tuple[str, ...] | None:
    items = r.listing(node, where)
    if items is None:
        return None
    names = []
    for i, item in enumerate(items):
        name = r.header_name(item, f"{where}[{i}]")
        if name is None:
            continue
        if name in NOT_FORWARDABLE:
            r.error(item, f"{where}[{i}]", f"{item.value!r} is set by the gateway, not forwarded")
            continue
        names.append(name)
    return tuple(dict.fromkeys(names))


def read_settings(
    r: Reader, node: Node | None, vocabulary: Vocabulary, names: Mapping[str, Collection[str]]
) -> GatewaySettings:
    builtins = {o.name: o.builtin for o in vocabulary.settings_options if o.builtin is not None}
    defaults = GatewaySettings(options=MappingProxyType(builtins))
    if node is None:
        return defaults
    fields = settings_section(vocabulary).fields(r, node, "settings")
    if not fields:
        return defaults
    timeout = max_body = max_response = forward = per_client = None
    if "timeout" in fields:
        timeout = r.duration(fields["timeout"], "settings.timeout")
    if "max_body_size" in fields:
        max_body = r.size(fields["max_body_size"], "settings.max_body_size")
    if "max_response_size" in fields:
        max_response = r.size(fields["max_response_size"], "settings.max_response_size")
    if "forward_headers" in fields:
        forward = read_forward_headers(r, fields["forward_headers"], "settings.forward_headers")
    if "max_streams_per_client" in fields:
        per_client = r.integer(fields["max_streams_per_client"], "settings.max_streams_per_client")
    options: dict[str, Any] = dict(builtins)  # `key: null` takes a built-in default away
    context = RouteContext(
        where="settings", names=names, params=None, methods=None, settings=defaults
    )
    for option in vocabulary.settings_options:
        key = option.keys[0].name
        if key in fields and fields[key].value is not None:
            value = option.read(r, {key: fields[key]}, context)
            if value is not None:
                options[option.name] = value
        elif key in fields:
            options.pop(option.name, None)
    for option in vocabulary.settings_only:
        named = {k.name: fields[k.name] for k in option.settings_keys if k.name in fields}
        if named and option.read_settings is not None:
            value = option.read_settings(r, named, context)
            if value is not None:
                options[option.name] = value
    return GatewaySettings(
        timeout=timeout or defaults.timeout,
        max_body_size=max_body or defaults.max_body_size,
        max_response_size=max_response or defaults.max_response_size,
        forward_headers=defaults.forward_headers if forward is None else forward,
        max_streams_per_client=per_client or defaults.max_streams_per_client,
        options=MappingProxyType(options),
    )
