"""The access log (gateway/observe/accesslog.py)."""

from __future__ import annotations

import io
import time

import orjson

from gateway.envelope import BackendLog, Envelope
from gateway.observe.accesslog import AccessLog
from tests.conftest import envelope


def context() -> Envelope:
    made = envelope("orders", client="198.51.100.2", identity="acme")
    made.log.completed = False
    made.log.backends.append(BackendLog("user", 200, 0.012, 1, "ok"))
    made.log.backends.append(BackendLog("orders", None, 0.5, 3, "timeout"))
    return made


def test_json_line() -> None:
    out = io.BytesIO()
    AccessLog("json", out).record(context(), "GET", "/o", 200, time.perf_counter() - 0.25)
    line = out.getvalue()
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    entry = orjson.loads(line)
    assert entry["request_id"] == "r-1" and entry["route"] == "orders" and entry["status"] == 200
    assert (
        entry["client"] == "198.51.100.2"
        and entry["identity"] == "acme"
        and entry["completed"] is False
    )
    assert 240 < entry["duration_ms"] < 400
    assert entry["backends"] == [
        {"name": "user", "status": 200, "duration_ms": 12.0, "attempts": 1, "outcome": "ok"},
        {
            "name": "orders",
            "status": None,
            "duration_ms": 500.0,
            "attempts": 3,
            "outcome": "timeout",
        },
    ]


def test_text_line() -> None:
    out = io.BytesIO()
    AccessLog("text", out).record(context(), "POST", "/o", 502, time.perf_counter())
    line = out.getvalue().decode()
    assert " 198.51.100.2 POST /o 502 " in line
    assert "route=orders request_id=r-1 identity=acme completed=false" in line
    assert "user=200/12ms orders=timeout/500msx3" in line
