"""`python -m gateway.demo [--host H] [--port-base P]`: run the demo upstreams
(users on P, orders on P+1, billing on P+2, live on P+3, and the gRPC greeter
on P+4, over h2c) in one process until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import sys

import uvicorn

from gateway.demo.greeter import greeter
from gateway.demo.services import billing, live, orders, users
from gateway.edge.autoprotocol import AutoProtocol

APPS = (users, orders, billing, live, greeter)


def bind(host: str, port: int) -> socket.socket:
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY on accepted connections only
    # for sockets that say they are TCP. Without it every answer written in two
    # parts (headers, body) waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        sys.stderr.write(f"gateway.demo: cannot listen on {host}:{port}: {exc.strerror}\n")
        raise SystemExit(1) from None
    return sock


async def serve(sockets: list[socket.socket]) -> None:
    servers = [
        uvicorn.Server(
            uvicorn.Config(
                app,
                log_level="warning",
                lifespan="off",
                timeout_graceful_shutdown=2,
                http=AutoProtocol if app is greeter else "auto",  # gRPC: HTTP/2
            )
        )
        for app in APPS
    ]
    await asyncio.gather(
        *(s.serve(sockets=[sock]) for s, sock in zip(servers, sockets, strict=True))
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port-base", type=int, default=9001)
    args = parser.parse_args()
    sockets = [bind(args.host, args.port_base + i) for i in range(len(APPS))]
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(sockets))


if __name__ == "__main__":
    main()
