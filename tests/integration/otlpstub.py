"""A stub OpenTelemetry collector: OTLP/HTTP on 127.0.0.1, decoding every
`POST /v1/traces` with the official protobuf classes (opentelemetry-proto).

It runs on a thread of the test process; the gateway, a separate process,
exports to it. `answer_after` makes it slow (it holds each request that long
before answering) and `status` makes it refuse batches.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

__all__ = ["Collector", "Span"]


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    return getattr(value, kind) if kind else None


@dataclass(frozen=True)
class Span:
    """One exported span, decoded."""

    trace_id: str
    span_id: str
    parent_id: str
    name: str
    kind: int  # 2 SERVER, 3 CLIENT
    start: int
    end: int
    attributes: dict[str, Any]
    status: int  # 0 unset, 2 error
    resource: dict[str, Any]
    trace_state: str


class Collector:
    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.requests = 0
        self.content_types: set[str] = set()
        self.status = 200
        self.answer_after = 0.0
        self._lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                if collector.answer_after:
                    time.sleep(collector.answer_after)
                collector._receive(self.path, self.headers.get("content-type", ""), body)
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(collector.status)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def _receive(self, path: str, content_type: str, body: bytes) -> None:
        request = ExportTraceServiceRequest.FromString(body)  # fails loudly on a bad payload
        spans = []
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for s in scope_spans.spans:
                    spans.append(
                        Span(
                            s.trace_id.hex(),
                            s.span_id.hex(),
                            s.parent_span_id.hex(),
                            s.name,
                            s.kind,
                            s.start_time_unix_nano,
                            s.end_time_unix_nano,
                            {a.key: _value(a.value) for a in s.attributes},
                            s.status.code,
                            resource,
                            s.trace_state,
                        )
                    )
        with self._lock:
            self.requests += 1
            self.content_types.add(f"{path} {content_type}")
            if self.status == 200:
                self.spans.extend(spans)

    def trace(self, trace_id: str, count: int, timeout: float = 10) -> list[Span]:
        """The spans of one trace, once `count` of them arrived."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                found = [s for s in self.spans if s.trace_id == trace_id]
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"{len(found)} of {count} spans of {trace_id} arrived")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
