"""Log formatting, in UTC whatever the machine's zone: one JSON object per line
(LOG_FORMAT=json, the default) or one readable line (LOG_FORMAT=text), with
the same timestamp style as the access log's; and the filter that keeps
credentials in query strings out of other loggers' lines."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

import orjson

from gateway.credentials import redact

__all__ = ["JsonFormatter", "MaskQueryCredentials", "TextFormatter", "utc_timestamp"]

# Attributes every LogRecord has; anything else was passed in `extra=`.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


def utc_timestamp(created: float, timespec: str = "milliseconds") -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec=timespec)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "time": utc_timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        data.update(
            (key, value)
            for key, value in record.__dict__.items()
            if key not in _STANDARD and not key.startswith("_")
        )
        if record.exc_info:
            data["error"] = self.formatException(record.exc_info)
        return orjson.dumps(data, default=str).decode()


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = (
            f"{utc_timestamp(record.created, 'seconds')} {record.levelname} "
            f"{record.name}: {record.getMessage()}"
        )
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class MaskQueryCredentials(logging.Filter):
    """Shows credential query parameters as *** in other loggers' lines.

    uvicorn's access log and its WebSocket lines ("WebSocket /path?query"
    [accepted]) print the request target as the client sent it; installed on
    those loggers (gateway/edge/boot.py), this rewrites any argument holding a
    query. `names` is asked each time: a reload may change the providers."""

    def __init__(self, names: Callable[[], frozenset[str]]) -> None:
        super().__init__()
        self._names = names

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and any(isinstance(a, str) and "?" in a for a in args):
            names = self._names()
            if names:
                record.args = tuple(_masked(a, names) for a in args)
        return True


def _masked(arg: object, names: frozenset[str]) -> object:
    if not isinstance(arg, str) or "?" not in arg:
        return arg
    path, _, query = arg.partition("?")
    return f"{path}?{redact(query, names)}"
