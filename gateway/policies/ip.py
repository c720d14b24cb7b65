"""IP lists (SPEC 3.16): `ip: {allow: [CIDR...], deny: [CIDR...]}` on a route,
or in `settings` for every route that sets none (`ip: null` turns it off).

The address checked is the client address of SPEC 3.4 (TRUSTED_PROXIES
decides whose X-Forwarded-For counts). A denied address, or one outside a
non-empty `allow`, gets 403 `ip-denied`; `deny` wins over `allow`. IPv4,
IPv6 and IPv4-mapped IPv6 (`::ffff:10.0.0.1` is `10.0.0.1`) match alike.

A list is folded at load into one set of network numbers per prefix length
(overlapping and adjacent networks merged first): an address is checked by
shifting it once per prefix length the list uses and looking the result up,
so 10,000 CIDRs cost what 10 do (at most 33 lookups for IPv4, 129 for IPv6,
in practice a handful).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gateway.addresses import Address, parse_address
from gateway.envelope import RouteCall
from gateway.errors import IpDenied
from gateway.routes.keys import Key, Section, Value
from gateway.routes.model import Route
from gateway.routes.openapi import Description
from gateway.routes.reader import Reader
from gateway.routes.source import Node
from gateway.routes.vocabulary import Option, RouteContext
from gateway.stack import Answer, BuildContext, Policy, RouteHandler, RouteStage

__all__ = ["OPTION", "POLICY", "IpRule", "NetworkSet"]

type Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_CIDRS = Value(
    {"type": "array", "items": {"type": "string", "pattern": r"^[0-9A-Fa-f:.]+(/[0-9]{1,3})?$"}},
    ["10.0.0.0/8", "2001:db8::/32"],
    ["not a network"],
)


# --- the routes file -------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class IpRule:
    allow: tuple[Network, ...] = ()
    deny: tuple[Network, ...] = ()


SECTION = Section(
    (
        Key(name="allow", value=_CIDRS),
        Key(name="deny", value=_CIDRS, example=["192.0.2.0/24"]),
    )
)


def _read(r: Reader, fields: Mapping[str, Node], ctx: RouteContext) -> IpRule | None:
    where = ctx.at("ip")
    found = SECTION.fields(r, fields["ip"], where)
    if found is None:
        return None
    lists: dict[str, tuple[Network, ...]] = {}
    for key in ("allow", "deny"):
        lists[key] = ()
        if key not in found:
            continue
        for index, item in enumerate(r.listing(found[key], f"{where}.{key}") or []):
            text = r.string(item, f"{where}.{key}[{index}]")
            if text is None:
                continue
            try:
                network = _normalized(ipaddress.ip_network(text.strip(), strict=False))
            except ValueError as exc:
                r.error(item, f"{where}.{key}[{index}]", f"{text!r} is not a CIDR: {exc}")
                continue
            lists[key] += (network,)
    return IpRule(allow=lists["allow"], deny=lists["deny"])


def _normalized(network: Network) -> Network:
    """An IPv4-mapped IPv6 network (::ffff:10.0.0.0/104) as the IPv4 one it is."""
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96:
        mapped = network.network_address.ipv4_mapped
        if mapped is not None:
            return ipaddress.IPv4Network((mapped, network.prefixlen - 96))
    return network


OPTION = Option[IpRule](
    name="ip",
    keys=(Key(name="ip", value=SECTION, nullable=True),),
    read=_read,
    in_settings=True,
)


# --- matching --------------------------------------------------------------------
class NetworkSet:
    """Networks of both families, folded into one set of network numbers per
    prefix length: membership costs one shift and one lookup per length."""

    __slots__ = ("_v4", "_v6")

    def __init__(self, networks: Iterable[Network]) -> None:
        listed = list(networks)
        v4 = [n for n in listed if isinstance(n, ipaddress.IPv4Network)]
        v6 = [n for n in listed if isinstance(n, ipaddress.IPv6Network)]
        self._v4 = _fold(ipaddress.collapse_addresses(v4), 32)
        self._v6 = _fold(ipaddress.collapse_addresses(v6), 128)

    def __bool__(self) -> bool:
        return bool(self._v4 or self._v6)

    def __contains__(self, address: Address) -> bool:
        number = int(address)
        if isinstance(address, ipaddress.IPv4Address):
            return any(number >> shift in numbers for shift, numbers in self._v4)
        return any(number >> shift in numbers for shift, numbers in self._v6)


def _fold(networks: Iterable[Network], bits: int) -> tuple[tuple[int, frozenset[int]], ...]:
    """(shift, the network numbers of that prefix length), shortest prefix first."""
    by_length: dict[int, set[int]] = {}
    for network in networks:
        shift = bits - network.prefixlen
        by_length.setdefault(shift, set()).add(int(network.network_address) >> shift)
    return tuple((shift, frozenset(by_length[shift])) for shift in sorted(by_length, reverse=True))


# --- the stage -------------------------------------------------------------------
def ip_stage(route: Route, context: BuildContext) -> RouteStage | None:
    rule = OPTION.of(route)
    if rule is None or not (rule.allow or rule.deny):
        return None
    allow, deny = NetworkSet(rule.allow), NetworkSet(rule.deny)

    def stage(inner: RouteHandler) -> RouteHandler:
        async def handler(call: RouteCall) -> Answer:
            client = call.envelope.client
            address = parse_address(client)
            if address is None or address in deny or (allow and address not in allow):
                raise IpDenied(f"the address {client} is not allowed here")
            return await inner(call)

        return handler

    return stage


def describe(route: Route, description: Description) -> None:
    rule = OPTION.of(route)
    if rule is not None and (rule.allow or rule.deny):
        description.refusal(403, "The client's address is not allowed (type ip-denied)")


def _summary(route: Route) -> str | None:
    rule = OPTION.of(route)
    if rule is None or not (rule.allow or rule.deny):
        return None
    return f"ip: {len(rule.allow)} allowed, {len(rule.deny)} denied networks"


POLICY = Policy(name="ip", option=OPTION, stage=ip_stage, describe=describe, summary=_summary)
