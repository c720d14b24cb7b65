"""JSON log lines (gateway/observe/logs.py)."""

from __future__ import annotations

import logging

import orjson

from gateway.observe.logs import JsonFormatter


def test_json_line_with_extras_and_error() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.getLogger("gateway").makeRecord(
            "gateway",
            logging.ERROR,
            __file__,
            1,
            "failed %s",
            ("x",),
            exc_info=__import__("sys").exc_info(),
            extra={"request_id": "r1", "route": "users"},
        )
    line = JsonFormatter().format(record)
    assert "\n" not in line
    data = orjson.loads(line)
    assert (
        data["message"] == "failed x" and data["level"] == "error" and data["logger"] == "gateway"
    )
    assert data["request_id"] == "r1" and data["route"] == "users"
    assert "ValueError: boom" in data["error"]
    assert data["time"].endswith("+00:00")
