"""The few lines of RFC 6455 framing the bench's own WebSocket peers need
(bench/liveupstream.py, bench/longlived.py): whole frames in, whole frames out,
no extensions. Not the gateway's: the gateway's sides use uvicorn's and the
`websockets` package's implementations."""

from __future__ import annotations

from collections.abc import Iterator

try:
    from websockets.speedups import apply_mask  # C, as the gateway's own stack uses
except ImportError:  # pragma: no cover

    def apply_mask(data: bytes, mask: bytes) -> bytes:
        return bytes(b ^ mask[i % 4] for i, b in enumerate(data))


__all__ = ["Frames", "frame"]

# A client must mask; a zero key is a valid key that leaves the bytes as they
# are, so the bench client spends nothing on it (the gateway still unmasks).
ZERO_MASK = b"\x00\x00\x00\x00"


def frame(opcode: int, payload: bytes, *, masked: bool = False) -> bytes:
    """One final frame."""
    n = len(payload)
    bit = 0x80 if masked else 0
    if n < 126:
        head = bytes((0x80 | opcode, bit | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, bit | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, bit | 127)) + n.to_bytes(8, "big")
    return head + ZERO_MASK + payload if masked else head + payload


class Frames:
    """Bytes in, (opcode, payload) out; a partial frame waits for the rest."""

    def __init__(self) -> None:
        self.buffer = b""

    def feed(self, data: bytes) -> Iterator[tuple[int, bytes]]:
        buf = self.buffer + data if self.buffer else data
        pos, size = 0, len(buf)
        while size - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            n, i = b1 & 0x7F, pos + 2
            if n == 126:
                if size - i < 2:
                    break
                n, i = int.from_bytes(buf[i : i + 2], "big"), i + 2
            elif n == 127:
                if size - i < 8:
                    break
                n, i = int.from_bytes(buf[i : i + 8], "big"), i + 8
            mask = b""
            if b1 & 0x80:
                if size - i < 4:
                    break
                mask, i = buf[i : i + 4], i + 4
            if size - i < n:
                break
            payload = buf[i : i + n]
            if mask and mask != ZERO_MASK:
                payload = apply_mask(payload, mask)
            pos = i + n
            yield b0 & 0x0F, payload
        self.buffer = buf[pos:]
