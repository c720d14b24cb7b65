"""A gRPC upstream for tests (grpcio), messages as raw bytes (no protobuf):
service `test.v1.Echo`.

    Echo      unary: {"message", "metadata"} as JSON; trailing metadata x-trail
    Fail      unary: aborts with the status code the message names
    Slow      unary: sleeps the milliseconds the message names, then answers
    Left      unary: the time the call had left, in ms (its grpc-timeout)
    Count     server streaming: the message names how many answers
    Sum       client streaming: the messages joined with "+"
    Chat      bidirectional: each message echoed as it comes
    Total     bidirectional: after each message, the sum of the numbers so far

python -m tests.integration.grpcstub --port N [--cert F --key F]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc

SERVICE = "test.v1.Echo"


def echo(request: bytes, context: Any) -> bytes:
    context.set_trailing_metadata((("x-trail", "yes"),))
    metadata = [[k, v if isinstance(v, str) else v.hex()] for k, v in context.invocation_metadata()]
    return json.dumps({"message": request.decode(), "metadata": metadata}).encode()


def fail(request: bytes, context: Any) -> bytes:
    context.set_trailing_metadata((("x-why", "asked"),))
    context.abort(grpc.StatusCode(_code(int(request))), f"failed as asked: {request.decode()}")
    raise AssertionError  # abort raises


def _code(number: int) -> tuple[int, str]:
    for status in grpc.StatusCode:
        if status.value[0] == number:
            return status.value
    raise ValueError(number)


def slow(request: bytes, context: Any) -> bytes:
    time.sleep(int(request) / 1000)
    return b"slept"


def left(request: bytes, context: Any) -> bytes:
    remaining = context.time_remaining()
    return str(-1 if remaining is None else int(remaining * 1000)).encode()


def count(request: bytes, context: Any) -> Iterator[bytes]:
    for i in range(int(request)):
        yield str(i).encode()


def total(requests: Iterator[bytes], context: Any) -> bytes:
    return b"+".join(requests)


def chat(requests: Iterator[bytes], context: Any) -> Iterator[bytes]:
    for message in requests:
        yield b"echo:" + message


def running_total(requests: Iterator[bytes], context: Any) -> Iterator[bytes]:
    total = 0
    for message in requests:
        total += int(message)
        yield str(total).encode()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    args = parser.parse_args()
    handlers = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Echo": grpc.unary_unary_rpc_method_handler(echo),
            "Fail": grpc.unary_unary_rpc_method_handler(fail),
            "Slow": grpc.unary_unary_rpc_method_handler(slow),
            "Left": grpc.unary_unary_rpc_method_handler(left),
            "Count": grpc.unary_stream_rpc_method_handler(count),
            "Sum": grpc.stream_unary_rpc_method_handler(total),
            "Chat": grpc.stream_stream_rpc_method_handler(chat),
            "Total": grpc.stream_stream_rpc_method_handler(running_total),
        },
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32))
    server.add_generic_rpc_handlers((handlers,))
    address = f"127.0.0.1:{args.port}"
    if args.cert:
        with open(args.cert, "rb") as c, open(args.key, "rb") as k:
            credentials = grpc.ssl_server_credentials(((k.read(), c.read()),))
        server.add_secure_port(address, credentials)
    else:
        server.add_insecure_port(address)
    server.start()
    print(f"grpc stub on {address}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
