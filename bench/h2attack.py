"""bench only: one hostile HTTP/2 client, attacking without pause for a time
and reconnecting each time it is cut off (bench/http2.py, H2X).

    python -m bench.h2attack PORT ATTACK SECONDS

Prints one JSON line: connections opened, and how many ended with a GOAWAY
or were closed under it. The streams it opens ask for H2ATTACK_PATH (default
a proxied call that answers after a second: each stream costs the gateway an
upstream call until it is reset).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable

from tests.h2raw import Closed, RawH2

INITIAL_WINDOW_SIZE = 0x4
TARGET = os.environ.get("H2ATTACK_PATH", "/proxy/delay/1000/users/1")


def _loop(send: Callable[[], bool]) -> None:
    """`send` until it fails (the server has closed the connection)."""
    while send():
        pass


def rapid_reset(client: RawH2) -> None:
    def send() -> bool:
        return client.reset(client.request(TARGET))

    _loop(send)


def continuation(client: RawH2) -> None:
    client.continuation_flood(1_000_000)


def ping(client: RawH2) -> None:
    _loop(client.ping)


def settings(client: RawH2) -> None:
    _loop(client.settings)


def refused(client: RawH2) -> None:
    def send() -> bool:
        client.request(TARGET)
        return not client.broken

    _loop(send)


def zero_window(port: int) -> RawH2:
    client = RawH2(port, settings={INITIAL_WINDOW_SIZE: 0}, credit=False)
    client.request("/proxy/kb/1000")  # about 1 MB
    return client


ATTACKS: dict[str, Callable[[RawH2], None]] = {
    "rapid-reset": rapid_reset,
    "continuation": continuation,
    "ping": ping,
    "settings": settings,
    "refused-streams": refused,
}


def _drain(client: RawH2, outcome: dict[str, int]) -> None:
    """Read until the server ends the connection: a GOAWAY, or a close."""
    try:
        if client.goaway(timeout=30) is not None:
            outcome["goaway"] += 1
        else:
            outcome["closed"] += 1
    except (Closed, TimeoutError, OSError):
        outcome["closed"] += 1


def main() -> None:
    port, attack, seconds = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    outcome = {"connections": 0, "goaway": 0, "closed": 0}
    deadline = time.monotonic() + seconds
    if attack == "zero-window":  # 10 connections at a time, each holding its window shut
        while time.monotonic() < deadline:
            clients = [zero_window(port) for _ in range(10)]
            outcome["connections"] += len(clients)
            readers = [threading.Thread(target=_drain, args=(c, outcome)) for c in clients]
            for reader in readers:
                reader.start()
            for reader in readers:
                reader.join()
            for c in clients:
                c.close()
    else:
        while time.monotonic() < deadline:
            client = RawH2(port)
            outcome["connections"] += 1
            reader = threading.Thread(target=_drain, args=(client, outcome))
            reader.start()
            ATTACKS[attack](client)
            reader.join()
            client.close()
    print(json.dumps(outcome), flush=True)


if __name__ == "__main__":
    main()
