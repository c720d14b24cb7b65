"""What the routes file may hold besides its core, as the loader is told it.

The core of the file (the top level, `settings`, `upstreams`, `hooks`, what
every route has) is this package's own. Route kinds (`backends`, `proxy`,
`websocket`) and policies (`cors`, `auth` and `scopes`, `rate_limit`) are
registered in gateway/registry.py, each with the part the loader needs: a
`KindReader` or an `Option`. The registry hands them to the loader as a
`Vocabulary`; this package never imports what registered them.

An `Option` is a policy's keys on a route, read into one frozen value that
the route keeps (`Option.of(route)`). With `in_settings`, its key is also a
key of `settings:`, the default of every route that does not set its own; a
route's own value replaces it and `null` turns it off for that route. An
option may own top-level sections too (`auth:` holds the providers).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from gateway.routes.keys import Key, Shape

if TYPE_CHECKING:
    from gateway.routes.model import GatewaySettings, Route, RouteTable
    from gateway.routes.reader import Reader
    from gateway.routes.source import Node

__all__ = ["KindReader", "Option", "RouteContext", "TopSection", "Vocabulary"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteContext:
    """What a route is read with: where it is (for messages), the names the
    file's named sections define (as written, valid or not: a broken
    upstream is reported once, not again at every route using it), the
    route path's parameters and its methods (None: invalid), the settings."""

    where: str
    names: Mapping[str, Collection[str]]  # "upstreams", "auth", ...: the names defined
    params: frozenset[str] | None
    methods: frozenset[str] | None
    settings: GatewaySettings

    @property
    def upstreams(self) -> Collection[str]:
        return self.names.get("upstreams", ())

    def at(self, key: str) -> str:
        """Where `key` is, for messages: "route 'users': cors", "settings.cors"."""
        return f"{self.where}.{key}" if self.where == "settings" else f"{self.where}: {key}"


@dataclass(frozen=True, slots=True, kw_only=True)
class KindReader:
    """One route kind in the routes file: its keys (the first names the kind,
    the others apply to routes of this kind only), the methods its routes may
    serve, the hook stages they take, and its reader (given the route's
    fields; returns the kind's frozen value)."""

    name: str  # "aggregate", "proxy": for messages and the dashboard
    keys: tuple[Key, ...]
    methods: tuple[str, ...]
    read: Callable[[Reader, Mapping[str, Node], RouteContext], object | None]
    hook_stages: tuple[str, ...] = ("request",)
    default_methods: frozenset[str] = frozenset({"GET", "HEAD"})
    # The route's path when it has none (its kind's fields given); None: `path` is required.
    default_path: Callable[[Mapping[str, Node]], str | None] | None = None

    @property
    def key(self) -> str:
        return self.keys[0].name

    @property
    def only_keys(self) -> tuple[str, ...]:
        return tuple(k.name for k in self.keys[1:])


@dataclass(frozen=True, slots=True, kw_only=True)
class TopSection:
    """A top-level section a policy owns: a mapping of names to entries
    (`auth:` -> providers). `read` returns the entries it could read."""

    key: str
    value: Shape
    read: Callable[[Reader, Node], Mapping[str, Any]]
    doc: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Option[T]:
    """A policy's keys on a route, read into one frozen value of type T."""

    name: str  # the policy's name: its value's key in Route.options
    keys: tuple[Key, ...]
    read: Callable[[Reader, Mapping[str, Node], RouteContext], T | None]
    in_settings: bool = False  # its (single) key is also a default in `settings:`
    # What `settings:` gives every route when it does not name the key
    # (compress is on unless `settings.compress: null`).
    builtin: T | None = None
    # Keys of `settings:` only (settings.default_plan), read by `read_settings`
    # into the value `default(settings)` returns.
    settings_keys: tuple[Key, ...] = ()
    read_settings: Callable[[Reader, Mapping[str, Node], RouteContext], T | None] | None = None
    sections: tuple[TopSection, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(k.name for k in self.keys)

    def of(self, route: Route) -> T | None:
        """This option's value on `route` (None: the route does not use it)."""
        return cast("T | None", route.options.get(self.name))

    def default(self, settings: GatewaySettings) -> T | None:
        """The value `settings:` gives every route (in_settings options)."""
        return cast("T | None", settings.options.get(self.name))

    def section(self, table: RouteTable, key: str) -> Mapping[str, Any]:
        """What one of its top-level sections held (name -> entry)."""
        return table.sections.get(key, {})


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """The registered kinds and options, as the loader needs them."""

    kinds: tuple[KindReader, ...]
    options: tuple[Option[Any], ...] = ()

    @property
    def top_sections(self) -> tuple[TopSection, ...]:
        return tuple(s for o in self.options for s in o.sections)

    @property
    def settings_options(self) -> tuple[Option[Any], ...]:
        return tuple(o for o in self.options if o.in_settings)

    @property
    def settings_only(self) -> tuple[Option[Any], ...]:
        return tuple(o for o in self.options if o.settings_keys)

    def kind_of(self, route: Route) -> KindReader:
        """The kind that read this route."""
        return next(k for k in self.kinds if k.name == route.kind_name)
