"""The local stack refusing to start: each reason named, and nothing left running."""

from __future__ import annotations

import asyncio
import socket

import pytest

from scripts.localstack import READY_LINE, http_ready_problem
from tests.e2e.conftest import READY_TIMEOUT, StackFactory

# One file per theme, so that pytest-xdist (one file per worker) runs the themes side by
# side: each test starts stacks of its own, which is what made one file the suite's pole.
pytestmark = [pytest.mark.slow(seconds=10), pytest.mark.timeout(600)]


@pytest.mark.parametrize("variable", ["SUPERAPP_NATS_PORT", "IDENTITY_PORT"])
async def test_a_taken_port_is_named_and_nothing_starts(
    make_stack: StackFactory, variable: str
) -> None:
    stack = make_stack()
    port = int(stack.env[variable])
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        stack.start()
        code = await stack.wait_exit(within=60.0)

    assert code != 0
    message = stack.stderr.strip()
    assert f"port {port} is already in use" in message
    assert variable in message
    assert len(message.splitlines()) == 1, message
    assert stack.pids() == {}


# The start-up failures need a service that fails or is late and others to stop: NATS and
# one more service do, without the CPU of importing all six Python components.
_TWO_SERVICES = ("--only", "identity,wallet")


async def test_a_service_that_cannot_start_is_named_and_the_rest_stop(
    make_stack: StackFactory,
) -> None:
    stack = make_stack(
        args=_TWO_SERVICES, IDENTITY_DATABASE_URL="postgresql+asyncpg://nobody@127.0.0.1:1/x"
    ).start()
    code = await stack.wait_exit(within=READY_TIMEOUT)

    assert code != 0
    assert "stack: identity exited with code 1 during start-up" in stack.stderr
    assert "identity: cannot start: IDENTITY_DATABASE_URL" in stack.stderr
    assert READY_LINE not in stack.stdout
    assert set(stack.pids()) == {"nats-server", "identity", "wallet"}
    await stack.wait_gone(stack.pids(), within=1.0)


async def test_components_not_ready_in_time_are_named_and_stopped(
    make_stack: StackFactory,
) -> None:
    stack = make_stack(args=(*_TWO_SERVICES, "--startup-timeout", "0.2")).start()
    code = await stack.wait_exit(within=READY_TIMEOUT)

    assert code != 0
    assert "stack: not ready after 0.2s: identity (" in stack.stderr
    assert set(stack.pids()) == {"nats-server", "identity", "wallet"}
    await stack.wait_gone(stack.pids(), within=1.0)


async def test_http_readiness_wants_200_from_readyz() -> None:
    """The check the BFF will get: an HTTP/1.1 GET whose status line must say 200."""
    statuses = {b"/readyz": b"200 OK", b"/starting": b"503 Service Unavailable"}

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        path = (await reader.readline()).split()[1]
        while await reader.readline() not in (b"\r\n", b""):
            pass
        writer.write(b"HTTP/1.1 " + statuses[path] + b"\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        assert await http_ready_problem("127.0.0.1", port, "/readyz") is None
        assert await http_ready_problem("127.0.0.1", port, "/starting") == "503 Service Unavailable"
    finally:
        server.close()
        await server.wait_closed()
    problem = await http_ready_problem("127.0.0.1", port, "/readyz")
    assert problem is not None
    assert problem.startswith("connect failed")
