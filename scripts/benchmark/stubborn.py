"""Parts that will not answer or will not stop, for the bounds that must hold when a
peer or a shutdown hangs: a task that swallows its cancellations, a gRPC upstream that
takes every call and never answers it, and a bare ASGI app whose shutdown can be made
to never end. The bench times our code against them; the tests use them too."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from starlette.types import Receive, Scope, Send

__all__ = ["BareApp", "hung_upstream", "swallowing"]


def swallowing(times: int, stopped: asyncio.Event) -> Callable[[], asyncio.Task[None]]:
    """A task factory: each task ignores its first `times` cancellations.

    It behaves like a `wait_for` that completed just as it was cancelled (CPython
    gh-86296): the cancellation is lost and the loop goes on. `stopped` ends it at its
    next wake-up (a cancellation, once it has swallowed its share).
    """

    async def run() -> None:
        ignored = 0
        while not stopped.is_set():
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                if ignored >= times:
                    raise
                ignored += 1

    return lambda: asyncio.create_task(run(), name=f"swallows-{times}")


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
    shutdown hangs until `release()`, like an app whose upstream channel never closes."""

    def __init__(self, *, hang_on_shutdown: bool) -> None:
        self.hang_on_shutdown = hang_on_shutdown
        self._released = asyncio.Event()
        self._shut_down = asyncio.Event()

    @property
    def shut_down(self) -> bool:
        """Whether its lifespan shutdown completed."""
        return self._shut_down.is_set()

    async def release(self) -> None:
        """End a hung shutdown (after the server gave up on it), and wait until it ends:
        its task would otherwise be left pending when the loop closes."""
        self._released.set()
        await self._shut_down.wait()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    if self.hang_on_shutdown:
                        await self._released.wait()
                    self._shut_down.set()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
