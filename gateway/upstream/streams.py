"""Long-lived connections have their own accounting (SPEC 3.10): no client
takes what belongs to everyone.

An event stream or NDJSON answer relayed from a proxy route holds one of its
upstream's pooled connections for as long as it runs; a WebSocket pair holds
an upstream connection of its own. Without a limit of their own, one client
opening a hundred event streams takes a whole pool, and every plain request
to that upstream then waits for a connection that never comes. So:

- `StreamSlots`, one per upstream: at most `max_streams` long-lived
  connections (default half of `max_connections`, so plain requests always
  keep the rest of the pool);
- `ClientStreams`, one per process: at most `max_streams_per_client` per
  client, across every upstream, by the rate-limit identity (the identity
  auth established, provider-qualified; the client address on public routes).

`open_stream` takes one of each or neither; past either limit the request is
refused with 503 and `Retry-After`. A `Stream` is given back once, when its
connection ends, however it ends. Counted in `gateway_upstream_streams` and
`gateway_stream_rejections_total{upstream,reason}`.
"""

from __future__ import annotations

from gateway.errors import TooManyStreams
from gateway.observe import metrics

__all__ = ["ClientStreams", "Stream", "StreamSlots", "open_stream", "refusal"]


class StreamSlots:
    """One upstream's long-lived connections."""

    __slots__ = ("limit", "open", "upstream")

    def __init__(self, upstream: str, limit: int) -> None:
        self.upstream = upstream
        self.limit = limit
        self.open = 0


class ClientStreams:
    """Open streams per client, forgotten once a client has none."""

    __slots__ = ("_open",)

    def __init__(self) -> None:
        self._open: dict[str, int] = {}

    def count(self, client: str) -> int:
        return self._open.get(client, 0)

    def _add(self, client: str) -> None:
        self._open[client] = self._open.get(client, 0) + 1

    def _remove(self, client: str) -> None:
        left = self._open.get(client, 0) - 1
        if left > 0:
            self._open[client] = left
        else:
            self._open.pop(client, None)


class Stream:
    """A slot taken: given back once by `close()`."""

    __slots__ = ("_client", "_clients", "_slots")

    def __init__(self, slots: StreamSlots, clients: ClientStreams, client: str) -> None:
        self._slots: StreamSlots | None = slots
        self._clients, self._client = clients, client

    def close(self) -> None:
        slots, self._slots = self._slots, None
        if slots is not None:
            slots.open -= 1
            metrics.UPSTREAM_STREAMS.labels(slots.upstream).set(slots.open)
            self._clients._remove(self._client)


def refusal(
    slots: StreamSlots, clients: ClientStreams, client: str, per_client: int
) -> TooManyStreams | None:
    """Why one more stream of `client` to this upstream would be refused, if it would."""
    if slots.open >= slots.limit:
        metrics.STREAM_REJECTIONS.labels(slots.upstream, "upstream").inc()
        return TooManyStreams(
            f"upstream {slots.upstream!r} has {slots.open} open streams (its max_streams)",
            backend=slots.upstream,
        )
    if clients.count(client) >= per_client:
        metrics.STREAM_REJECTIONS.labels(slots.upstream, "client").inc()
        return TooManyStreams(
            f"this client has {per_client} open streams (max_streams_per_client)",
            backend=slots.upstream,
        )
    return None


def open_stream(slots: StreamSlots, clients: ClientStreams, client: str, per_client: int) -> Stream:
    """Take a slot of the upstream's and one of the client's; raise
    TooManyStreams (503) when either is used up."""
    if (error := refusal(slots, clients, client, per_client)) is not None:
        raise error
    slots.open += 1
    metrics.UPSTREAM_STREAMS.labels(slots.upstream).set(slots.open)
    clients._add(client)
    return Stream(slots, clients, client)
