"""Servers that hang, for the bounds that must hold when a peer or a shutdown does:
a gRPC upstream that takes every call and never answers it, and a bare ASGI app whose
shutdown can be made to never end. The tests use them too."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

__all__ = ["BareApp", "hung_upstream"]


@contextlib.asynccontextmanager
async def hung_upstream() -> AsyncIterator[str]:
    """host:port of a gRPC server that reports SERVING and never answers anything else:
    an upstream that is up but hung. Each call ends at the caller's deadline."""

    async def never(_request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        await asyncio.Event().wait()  # until the caller's deadline cancels the call
        raise AssertionError("unreachable")

    class AnyMethod(grpc.GenericRpcHandler):
        def service(
            self, handler_call_details: grpc.HandlerCallDetails
        ) -> grpc.RpcMethodHandler[bytes, bytes]:
            return grpc.unary_unary_rpc_method_handler(never)

    server = grpc.aio.server()
    checks = health.aio.HealthServicer()
    await checks.set("", health_pb2.HealthCheckResponse.SERVING)
    # Registered first, so health checks reach it and every other method the hang.
    health_pb2_grpc.add_HealthServicer_to_server(checks, server)
    server.add_generic_rpc_handlers((AnyMethod(),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(0)


class BareApp:
    """An ASGI app that answers 200 to everything; with `hang_on_shutdown`, its lifespan
    shutdown never completes, like an app whose upstream channel never closes."""

    def __init__(self, *, hang_on_shutdown: bool) -> None:
        self.hang_on_shutdown = hang_on_shutdown
        self.shut_down = False
        """Whether its lifespan shutdown completed."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    if self.hang_on_shutdown:
                        await asyncio.Event().wait()
                    self.shut_down = True
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
