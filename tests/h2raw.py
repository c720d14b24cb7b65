"""A raw HTTP/2 client for tests: frames written and read by hand (hyperframe,
hpack), with none of a client library's own checks, so a test can do what a
hostile client does (open streams past the limit, reset in a loop, flood
CONTINUATION, PING or SETTINGS, keep its window shut)."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable, Iterable

from hpack import Decoder, Encoder
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

__all__ = ["PREFACE", "Closed", "RawH2"]

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class Closed(Exception):
    """The server closed the connection."""


class RawH2:
    def __init__(
        self,
        port: int,
        *,
        settings: dict[int, int] | None = None,
        context: ssl.SSLContext | None = None,
        preface: bool = True,
        credit: bool = True,
        source: str | None = None,
    ) -> None:
        """`credit`: give back flow-control credit for every DATA frame read
        (a client that reads); off, the windows stay as the server spent them.
        `source`: the address to connect from (127.0.0.N: an attacker of its
        own, whose cut-off does not touch other tests' connections)."""
        address = (source, 0) if source else None
        sock = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=address)
        self.sock = context.wrap_socket(sock, server_hostname="localhost") if context else sock
        self.encoder = Encoder()
        self.decoder = Decoder()
        self.decoder.max_header_list_size = 1 << 30
        self.next_id = 1
        self.server_settings: dict[int, int] = {}
        self.buffer = b""
        self.broken = False
        self.credit = credit
        if preface:
            self.write(PREFACE + SettingsFrame(0, settings=settings or {}).serialize())

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawH2:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writing --------------------------------------------------------------
    def write(self, data: bytes) -> bool:
        """False (and `broken` set) once the server has closed the connection."""
        try:
            self.sock.sendall(data)
        except OSError:
            self.broken = True
            return False
        return True

    def block(
        self, path: str, method: str = "GET", headers: Iterable[tuple[str, str]] = ()
    ) -> bytes:
        fields = [(":method", method), (":scheme", "http"), (":authority", "127.0.0.1")]
        return self.encoder.encode([*fields, (":path", path), *headers])

    def request(
        self,
        path: str,
        method: str = "GET",
        headers: Iterable[tuple[str, str]] = (),
        *,
        end_stream: bool = True,
    ) -> int:
        stream_id = self.next_id
        self.next_id += 2
        block = self.block(path, method, headers)
        pieces = [block[i : i + 16384] for i in range(0, len(block), 16384)]
        frames: list[HeadersFrame | ContinuationFrame] = [HeadersFrame(stream_id, data=pieces[0])]
        frames += [ContinuationFrame(stream_id, data=piece) for piece in pieces[1:]]
        frames[-1].flags.add("END_HEADERS")
        if end_stream:
            frames[0].flags.add("END_STREAM")
        self.write(b"".join(frame.serialize() for frame in frames))
        return stream_id

    def data(self, stream_id: int, data: bytes, *, end_stream: bool = False) -> bool:
        frame = DataFrame(stream_id, data=data)
        if end_stream:
            frame.flags.add("END_STREAM")
        return self.write(frame.serialize())

    def reset(self, stream_id: int, code: int = 8) -> bool:
        return self.write(RstStreamFrame(stream_id, error_code=code).serialize())

    def ping(self) -> bool:
        return self.write(PingFrame(0, opaque_data=b"12345678").serialize())

    def settings(self, values: dict[int, int] | None = None) -> bool:
        return self.write(SettingsFrame(0, settings=values or {}).serialize())

    def window(self, stream_id: int, increment: int) -> bool:
        return self.write(WindowUpdateFrame(stream_id, window_increment=increment).serialize())

    def continuation_flood(self, count: int) -> bool:
        """A HEADERS frame without END_HEADERS, then `count` CONTINUATION
        frames that never end it."""
        stream_id = self.next_id
        self.next_id += 2
        block = self.block("/flood")
        sent = self.write(HeadersFrame(stream_id, data=block).serialize())
        piece = ContinuationFrame(stream_id, data=b"\x40\x01x\x01y").serialize()
        for _ in range(count // 100):
            if not (sent := self.write(piece * 100)):
                break
        return sent

    # --- reading --------------------------------------------------------------
    def _read(self, size: int, deadline: float) -> bytes:
        while len(self.buffer) < size:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                raise
            except OSError as exc:
                raise Closed(str(exc)) from exc
            if not chunk:
                raise Closed("end of stream")
            self.buffer += chunk
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def frame(self, timeout: float = 10.0) -> Frame:
        deadline = time.monotonic() + timeout
        frame, length = Frame.parse_frame_header(memoryview(self._read(9, deadline)))
        frame.parse_body(memoryview(self._read(length, deadline)))
        if isinstance(frame, HeadersFrame | ContinuationFrame):
            frame.headers = self.decoder.decode(frame.data, raw=True)  # type: ignore[union-attr]
        if isinstance(frame, DataFrame) and frame.flow_controlled_length and self.credit:
            self.window(0, frame.flow_controlled_length)
            self.window(frame.stream_id, frame.flow_controlled_length)
        if isinstance(frame, SettingsFrame) and "ACK" not in frame.flags:
            self.server_settings.update(frame.settings)
            ack = SettingsFrame(0)
            ack.flags.add("ACK")
            self.write(ack.serialize())
        return frame

    def until(self, done: Callable[[Frame], bool], timeout: float = 10.0) -> list[Frame]:
        """Frames up to and including the first for which `done` is true."""
        deadline = time.monotonic() + timeout
        frames: list[Frame] = []
        while True:
            frame = self.frame(max(0.01, deadline - time.monotonic()))
            frames.append(frame)
            if done(frame):
                return frames

    def goaway(self, timeout: float = 10.0) -> GoAwayFrame | None:
        """The server's GOAWAY, read past everything else; None if it closed
        the connection without one."""
        try:
            frames = self.until(lambda f: isinstance(f, GoAwayFrame), timeout)
        except Closed:
            return None
        goaway = frames[-1]
        assert isinstance(goaway, GoAwayFrame)
        return goaway

    def answers(self, stream_ids: set[int], timeout: float = 20.0) -> dict[int, object]:
        """For each stream: its status (int) once its answer has ended, or
        the RST_STREAM error code as ("reset", code)."""
        result: dict[int, object] = {}
        statuses: dict[int, int] = {}

        def done(frame: Frame) -> bool:
            sid = frame.stream_id
            if sid in stream_ids:
                if isinstance(frame, HeadersFrame) and sid not in statuses:
                    statuses[sid] = int(dict(frame.headers)[b":status"])  # type: ignore[attr-defined]
                if isinstance(frame, RstStreamFrame):
                    result[sid] = ("reset", frame.error_code)
                elif "END_STREAM" in frame.flags:
                    result[sid] = statuses.get(sid)
            return len(result) == len(stream_ids)

        self.until(done, timeout)
        return result
