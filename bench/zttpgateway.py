"""bench only: the gateway with uvicorn's zttp HTTP/1.1 protocol in place of
httptools, to measure one against the other (bench/http2.py, ZA and ZC).

The gateway refuses to start on a protocol that cannot enforce its request
limits (gateway/edge/server.py), and zttp's cannot: so this loads it on
httptools, then swaps the class uvicorn will serve with. Not for serving.

    python -m bench.zttpgateway PORT
"""

from __future__ import annotations

import sys

import uvicorn


def main() -> None:
    config = uvicorn.Config(
        "config.asgi:application",
        host="127.0.0.1",
        port=int(sys.argv[1]),
        loop="uvloop",
        http="httptools",
        access_log=False,
        server_header=False,
        backlog=16384,
        log_level="warning",
        timeout_keep_alive=75,
    )
    config.load()
    from uvicorn.protocols.http.zttp_impl import ZttpProtocol

    config.http_protocol_class = ZttpProtocol
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
