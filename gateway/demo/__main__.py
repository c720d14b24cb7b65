"""`python -m gateway.demo [--host H] [--port-base P]`: run the demo upstreams
(users on P, orders on P+1, billing on P+2) in one process until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib

import uvicorn

from .services import billing, orders, users


async def serve(host: str, base: int) -> None:
    servers = [
        uvicorn.Server(
            uvicorn.Config(app, host=host, port=base + i, log_level="warning", lifespan="off")
        )
        for i, app in enumerate((users, orders, billing))
    ]
    await asyncio.gather(*(s.serve() for s in servers))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port-base", type=int, default=9001)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port_base))


if __name__ == "__main__":
    main()
