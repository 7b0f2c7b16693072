"""The bare grpc.aio ceiling: one unary method that returns its request bytes untouched.

No interceptors, no protobuf, no health: only what every gRPC call of ours pays anyway.
Runs on uvloop like our services. `python -m scripts.benchmark.echo_server --port N`.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import grpc

__all__ = ["ECHO_METHOD", "serve"]

_SERVICE = "superapp.bench.Echo"
ECHO_METHOD = f"/{_SERVICE}/Echo"


async def _echo(request: bytes, _context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    return request


async def serve(port: int) -> None:
    """Serve the echo method on 127.0.0.1:`port` until SIGTERM or SIGINT."""
    # No serializers: requests and responses stay raw bytes. Registered like the
    # generated servicers register theirs, so the ceiling takes the same fast path.
    handlers: dict[str, grpc.RpcMethodHandler[bytes, bytes]] = {
        "Echo": grpc.unary_unary_rpc_method_handler(_echo)
    }
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(_SERVICE, handlers),))
    server.add_registered_method_handlers(_SERVICE, handlers)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await server.stop(1.0)


def main() -> None:
    """Parse `--port` and serve."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    port: int = parser.parse_args().port
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(port))
    else:
        uvloop.run(serve(port))


if __name__ == "__main__":
    main()
