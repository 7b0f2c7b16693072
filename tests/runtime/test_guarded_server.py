"""GuardedServer on a real grpc.aio server: every registration path is guarded, in order."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from services.runtime.guarded_server import GuardedServer


class _Tag:
    """A guard that records its name, and the method, each time a call passes it."""

    def __init__(self, name: str, seen: list[tuple[str, str]]) -> None:
        self._name = name
        self._seen = seen

    def guard(self, method: str, handler: Any) -> Any:
        inner = handler.unary_unary

        async def behavior(request: bytes, context: Any) -> bytes:
            self._seen.append((self._name, method))
            result: bytes = await inner(request, context)
            return result

        return grpc.unary_unary_rpc_method_handler(behavior)


async def _echo(request: bytes, _context: Any) -> bytes:
    return request


async def test_registered_and_generic_handlers_pass_every_guard_first_one_outermost() -> None:
    seen: list[tuple[str, str]] = []
    server = GuardedServer(grpc.aio.server(), [_Tag("outer", seen), _Tag("inner", seen)])
    handlers = {"Echo": grpc.unary_unary_rpc_method_handler(_echo)}
    server.add_registered_method_handlers("test.Registered", handlers)
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler("test.Generic", handlers)]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            for method in ("/test.Registered/Echo", "/test.Generic/Echo", "/test.Generic/Echo"):
                call: Any = channel.unary_unary(method)
                assert await call(b"ping") == b"ping"
            missing: Any = channel.unary_unary("/test.Generic/Missing")
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await missing(b"")
            assert refused.value.code() is grpc.StatusCode.UNIMPLEMENTED
    finally:
        await server.stop(None)
    assert seen == [
        ("outer", "/test.Registered/Echo"),
        ("inner", "/test.Registered/Echo"),
        ("outer", "/test.Generic/Echo"),
        ("inner", "/test.Generic/Echo"),
        ("outer", "/test.Generic/Echo"),
        ("inner", "/test.Generic/Echo"),
    ]
