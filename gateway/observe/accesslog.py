"""The access log (SPEC 3.9): one line per request on stdout, written when the
response has been sent (a streamed download logs its whole duration; a client
that went away logs status 499), plus the request metrics.

LOG_FORMAT=json (default): one JSON object per line with time, request_id,
route, method, path (with the query string, credential parameters shown as
***), status, duration_ms, client, identity, completed and, for each backend,
name, status, duration_ms, attempts and outcome; `cut` when the answer was
cut off (send_timeout, idle_timeout, upstream_failed); a WebSocket pair's line
(status 101, when it ends) adds `websocket`: messages from the client and from
the upstream, the close code and which side closed; a gRPC call's line adds
`grpc_status`, the status it ended with (HTTP says 200 either way).
LOG_FORMAT=text: the same on one human-readable line.

Lines are buffered and written at most FLUSH_SECONDS later (or once
FLUSH_BYTES have gathered, and at shutdown): one write per request would be
one system call per request.
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import UTC, datetime
from typing import BinaryIO

import orjson

from gateway.credentials import redact
from gateway.envelope import Envelope
from gateway.observe import metrics
from gateway.observe.live import LIVE
from gateway.observe.readiness import PROBES

__all__ = ["AccessLog"]

CLIENT_CLOSED = 499  # nginx's code for "the client went away first"
FLUSH_SECONDS = 0.1
FLUSH_BYTES = 64 * 1024
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class AccessLog:
    def __init__(self, fmt: str, stream: BinaryIO | None = None, *, enabled: bool = True) -> None:
        self._json = fmt == "json"
        self._stream = stream if stream is not None else sys.stdout.buffer
        self._enabled = enabled
        self._buffer = bytearray()
        self._flush_pending = False

    def record(
        self, envelope: Envelope, method: str, path: str, status: int, started: float
    ) -> None:
        duration = time.perf_counter() - started
        trace = envelope.trace
        if trace is not None and trace.recording and path not in PROBES:  # OpenTelemetry export
            grpc_status = envelope.log.grpc_status
            trace.finish(method, envelope.route, path, envelope.client, status, grpc_status)
        if envelope.query:  # credentials in it shown as ***
            path = f"{path}?{redact(envelope.query, envelope.secret_params)}"
        if not path.isascii():  # whatever a server hands over must become a log line
            path = path.encode("utf-8", "replace").decode("utf-8")
        metric_method = method if method in _METHODS else "OTHER"
        metrics.observe_request(envelope.route_name or "", metric_method, status, duration)
        if envelope.live:  # the dashboard's numbers (an error: its request id too)
            envelope.live = False
            request = (envelope.request_id, method, path) if status >= 400 else None
            LIVE.end(envelope.route_name, status, duration, request=request)
        if self._enabled:
            line = self._json_line if self._json else self._text_line
            self._buffer += line(envelope, method, path, status, duration)
            if len(self._buffer) >= FLUSH_BYTES:
                self.flush()
            elif not self._flush_pending:
                try:
                    asyncio.get_running_loop().call_later(FLUSH_SECONDS, self.flush)
                    self._flush_pending = True
                except RuntimeError:  # no event loop (a test): write now
                    self.flush()

    def flush(self) -> None:
        self._flush_pending = False
        if self._buffer:
            self._stream.write(self._buffer)
            self._stream.flush()
            self._buffer.clear()

    @staticmethod
    def _json_line(
        envelope: Envelope, method: str, path: str, status: int, duration: float
    ) -> bytes:
        entry: dict[str, object] = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "request_id": envelope.request_id,
            "trace_id": envelope.trace.trace_id if envelope.trace is not None else None,
            "route": envelope.route_name,
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": round(duration * 1000, 2),
            "client": envelope.client,
            "identity": envelope.identity,
            "completed": envelope.log.completed,
            "backends": [
                {
                    "name": b.name,
                    "status": b.status,
                    "duration_ms": round(b.duration * 1000, 2),
                    "attempts": b.attempts,
                    "outcome": b.outcome,
                }
                for b in envelope.log.backends
            ],
        }
        if (cut := _cut(envelope)) is not None:
            entry["cut"] = cut
        if (code := envelope.log.grpc_status) is not None:
            entry["grpc_status"] = code
        if envelope.hook_log:
            entry["hooks"] = [
                {"name": h.name, "stage": h.stage, "duration_ms": round(h.duration * 1000, 3)}
                for h in envelope.hook_log
            ]
        if (ws := envelope.log.websocket) is not None:
            entry["websocket"] = {
                "from_client": ws.to_upstream,
                "from_upstream": ws.to_client,
                "close_code": ws.close_code,
                "closed_by": ws.closed_by,
            }
        return orjson.dumps(entry) + b"\n"

    @staticmethod
    def _text_line(
        envelope: Envelope, method: str, path: str, status: int, duration: float
    ) -> bytes:
        backends = " ".join(
            f"{b.name}={b.status or b.outcome}/{b.duration * 1000:.0f}ms"
            + (f"x{b.attempts}" if b.attempts > 1 else "")
            for b in envelope.log.backends
        )
        who = f" identity={envelope.identity}" if envelope.identity else ""
        if envelope.hook_log:
            who += " hooks=" + ",".join(
                f"{h.name}/{h.duration * 1000:.1f}ms" for h in envelope.hook_log
            )
        done = (
            ""
            if envelope.log.completed is None
            else f" completed={str(envelope.log.completed).lower()}"
        )
        if (cut := _cut(envelope)) is not None:
            done += f" cut={cut}"
        if (code := envelope.log.grpc_status) is not None:
            done += f" grpc_status={code}"
        if (ws := envelope.log.websocket) is not None:
            done += (
                f" messages={ws.to_upstream}/{ws.to_client} close={ws.close_code}"
                f" closed_by={ws.closed_by}"
            )
        now = datetime.now(UTC).isoformat(timespec="seconds")
        text = (
            f"{now} {envelope.client} {method} {path} {status} {duration * 1000:.1f}ms "
            f"route={envelope.route_name or '-'} request_id={envelope.request_id}"
            + (f" trace_id={envelope.trace.trace_id}" if envelope.trace is not None else "")
            + f"{who}{done}"
            + (f" backends: {backends}" if backends else "")
        )
        return text.encode("utf-8", "replace") + b"\n"


def _cut(envelope: Envelope) -> str | None:
    """Why the answer was cut off, if it was (a WebSocket pair: its relay says)."""
    ws = envelope.log.websocket
    return envelope.cut or (ws.cut if ws is not None else None)
