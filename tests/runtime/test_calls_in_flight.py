"""CallsInFlight on a real grpc.aio server: a call counts until gRPC has finished it,
however it ends, so the count never drifts and `others()` tells a lone call from a
crowd."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from services.runtime.calls_in_flight import CallsInFlight
from services.runtime.guarded_server import GuardedServer


class _Service:
    """Handlers that report what `calls` says from inside a call."""

    def __init__(self, calls: CallsInFlight) -> None:
        self.calls = calls
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.seen_others: list[bool] = []

    async def hold(self, request: bytes, _context: Any) -> bytes:
        self.seen_others.append(self.calls.others())
        self.entered.set()
        await self.release.wait()
        return request

    async def echo(self, request: bytes, _context: Any) -> bytes:
        self.seen_others.append(self.calls.others())
        return request

    async def fail(self, _request: bytes, _context: Any) -> bytes:
        raise RuntimeError("the handler failed")


@pytest.fixture
async def served() -> AsyncIterator[tuple[_Service, grpc.aio.Channel]]:
    calls = CallsInFlight()
    service = _Service(calls)
    server = GuardedServer(grpc.aio.server(), [calls])
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(getattr(service, name))
        for name in ("hold", "echo", "fail")
    }
    server.add_registered_method_handlers("test.Calls", handlers)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield service, channel
    finally:
        await server.stop(None)


def _method(channel: grpc.aio.Channel, name: str) -> Any:
    return channel.unary_unary(f"/test.Calls/{name}")


async def _settled(calls: CallsInFlight) -> int:
    """The count once gRPC has reported every finished call (its callbacks are queued)."""
    for _ in range(100):
        if calls.count == 0:
            break
        await asyncio.sleep(0.01)
    return calls.count


async def test_a_lone_call_sees_no_others_and_the_count_returns_to_zero(
    served: tuple[_Service, grpc.aio.Channel],
) -> None:
    service, channel = served
    echo = _method(channel, "echo")
    for _ in range(3):
        assert await echo(b"ping") == b"ping"
        assert await _settled(service.calls) == 0
    assert service.seen_others == [False, False, False]


async def test_a_call_made_while_another_is_in_flight_sees_it(
    served: tuple[_Service, grpc.aio.Channel],
) -> None:
    service, channel = served
    hold = _method(channel, "hold")
    echo = _method(channel, "echo")
    held = asyncio.ensure_future(hold(b"held"))
    await asyncio.wait_for(service.entered.wait(), 5)
    assert service.calls.count == 1
    assert await echo(b"ping") == b"ping"
    service.release.set()
    assert await held == b"held"
    assert service.seen_others == [False, True]
    assert await _settled(service.calls) == 0


async def test_calls_that_fail_or_are_abandoned_stop_counting(
    served: tuple[_Service, grpc.aio.Channel],
) -> None:
    service, channel = served
    fail = _method(channel, "fail")
    hold = _method(channel, "hold")
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await fail(b"")
    assert failed.value.code() is grpc.StatusCode.UNKNOWN
    with pytest.raises(grpc.aio.AioRpcError) as abandoned:
        await hold(b"", timeout=0.2)  # the handler is still waiting when the deadline passes
    assert abandoned.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert await _settled(service.calls) == 0
