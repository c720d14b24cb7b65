"""Stream slots (gateway/upstream/streams.py): per upstream and per client."""

from __future__ import annotations

import pytest

from gateway.errors import TooManyStreams
from gateway.upstream.streams import ClientStreams, StreamSlots, open_stream, refusal


def test_an_upstream_keeps_its_slots_to_max_streams() -> None:
    slots, clients = StreamSlots("feed", 2), ClientStreams()
    a = open_stream(slots, clients, "alice", 10)
    open_stream(slots, clients, "bob", 10)
    with pytest.raises(TooManyStreams) as refused:
        open_stream(slots, clients, "carol", 10)
    assert refused.value.status == 503 and refused.value.headers["Retry-After"] == "5"
    assert "max_streams" in refused.value.detail and refused.value.backend == "feed"
    a.close()
    a.close()  # once only
    assert slots.open == 1
    open_stream(slots, clients, "carol", 10)


def test_a_client_keeps_to_its_own_share_across_upstreams() -> None:
    one, two, clients = StreamSlots("one", 10), StreamSlots("two", 10), ClientStreams()
    streams = [open_stream(one, clients, "alice", 3), open_stream(two, clients, "alice", 3)]
    streams.append(open_stream(two, clients, "alice", 3))
    error = refusal(one, clients, "alice", 3)
    assert error is not None and "max_streams_per_client" in error.detail
    assert refusal(one, clients, "bob", 3) is None  # never another client
    for stream in streams:
        stream.close()
    assert clients.count("alice") == 0 and clients._open == {}  # forgotten once at none
