"""Log formatting, in UTC whatever the machine's zone: one JSON object per line
(LOG_FORMAT=json, the default) or one readable line (LOG_FORMAT=text), with
the same timestamp style as the access log's."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import orjson

__all__ = ["JsonFormatter", "TextFormatter", "utc_timestamp"]

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
