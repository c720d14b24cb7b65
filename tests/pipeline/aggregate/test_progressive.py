"""Which answer a request to a `stream: true` route asked for, and how each
record is written (gateway/pipeline/aggregate/progressive.py)."""

from __future__ import annotations

import orjson
import pytest

from gateway.pipeline.aggregate.progressive import NDJSON, SSE, RecordWriter, preferred_stream


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (SSE, SSE),
        (NDJSON, NDJSON),
        ("text/event-stream; charset=utf-8", SSE),
        ("TEXT/EVENT-STREAM", SSE),
        (f"{NDJSON}, {SSE}", NDJSON),
        (f"{SSE};q=0.4, {NDJSON};q=0.5", NDJSON),
        (f"application/json, {SSE}", None),  # a tie goes to the range written first
        (f"{SSE}, application/json", SSE),
        (f"application/json;q=0.9, {SSE}", SSE),
        ("*/*", None),
        ("text/*", SSE),
        ("application/*", None),
        (f"{SSE};q=0", None),
        (f"{SSE};q=abc", None),
        ("", None),
        (",,;", None),
    ],
)
def test_preferred_stream(accept: str, expected: str | None) -> None:
    assert preferred_stream(accept) == expected


def test_records_as_sse_and_as_ndjson() -> None:
    record = {"name": "users", "key": None, "status": "ok", "body": {"a": "x\ny"}}
    sse = RecordWriter(SSE)("part", record)
    assert sse.startswith(b"event: part\ndata: ") and sse.endswith(b"\n\n")
    assert sse.count(b"\n") == 3  # a newline in the data is escaped by JSON
    assert orjson.loads(sse.split(b"data: ", 1)[1]) == record
    line = RecordWriter(NDJSON)("part", record)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert orjson.loads(line) == {"event": "part", **record}
