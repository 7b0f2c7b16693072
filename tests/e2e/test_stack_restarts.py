"""The local stack's supervisor: a killed service is started again, alone; a killed
launcher takes every child with it.

The tests share one stack (see `SharedStack`); the killed launcher's test comes last,
as it ends the stack. Each also runs alone.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

import grpc
import httpx
import pytest

from scripts.localstack import READY_LINE
from services.runtime.health_client import wait_serving
from tests.e2e.conftest import SharedStack, SharedStackFactory
from tests.e2e.stack_journeys import (
    GRPC_COMPONENTS,
    signed_in,
    until_ok,
)

pytestmark = [pytest.mark.slow(seconds=30), pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def stack(shared_stack: SharedStackFactory) -> SharedStack:
    return shared_stack()


# A route of the BFF that needs each service, for the signed-in user.
_ROUTE_NEEDING = {
    "identity": "/v1/me",
    "wallet": "/v1/me/wallet",
    "catalogue": "/v1/categories",
    "orders": "/v1/me/orders",
    "miniapps": "/v1/mini-apps",
}
RESTART_WITHIN = 10.0
"""How soon a killed service must be SERVING again (the issue's bound), unless the
machine is so loaded that the whole stack took longer than that to start at first: then
twice that start, since one process's restart meets whatever load the moment brings (at
load ~10, 46 s for one restart after a 37 s start of the whole stack)."""


async def test_a_killed_service_is_started_again_and_nothing_else_is(
    stack: SharedStack,
) -> None:
    running = await stack.running()
    assert running.ready_after is not None
    bound = max(RESTART_WITHIN, 2 * running.ready_after)
    bff = f"http://{running.address('BFF_PORT')}"
    async with httpx.AsyncClient(base_url=bff, timeout=10.0) as http:
        auth = await signed_in(http)
        await until_ok(http, "/v1/me/wallet", auth)  # the wallet has opened
        for component in GRPC_COMPONENTS:
            name, path = component.name, _ROUTE_NEEDING[component.name]
            before = running.pids()
            os.kill(before[name], signal.SIGKILL)
            killed = time.monotonic()
            await running.wait_gone({name: before[name]}, within=5.0)

            # Meanwhile the BFF says, in its own words, that the service is unavailable.
            outage = await http.get(path, headers=auth)
            assert outage.status_code == 503, (name, outage.text)
            assert outage.headers["content-type"] == "application/problem+json"
            assert outage.json()["status"] == 503

            address = running.address(component.port_variable)
            async with grpc.aio.insecure_channel(address) as channel, asyncio.timeout(bound + 60):
                await wait_serving(channel)
            took = time.monotonic() - killed
            assert took < bound, f"{name} SERVING again after {took:.1f}s (bound {bound:.1f}s)"
            after = running.pids()
            assert after[name] != before[name]
            assert {k: v for k, v in after.items() if k != name} == {
                k: v for k, v in before.items() if k != name
            }, "another component was restarted"
            # The same BFF process serves the route again by itself.
            assert (await until_ok(http, path, auth)).status_code == 200
    assert f"stack: {name} was killed by SIGKILL; starting it again" in running.stderr
    assert READY_LINE in running.stdout
    assert running.process is not None
    assert running.process.poll() is None  # still running


async def test_every_child_dies_with_a_killed_launcher(stack: SharedStack) -> None:
    running = await stack.running()
    pids = running.pids()
    relays = running.relay_pids()
    assert set(relays) == {c.name for c in GRPC_COMPONENTS}
    assert running.process is not None

    # `scripts/stack` execs the launcher, so the pid we hold is the launcher's.
    running.process.kill()
    running.process.wait()

    await running.wait_gone({**pids, **relays})  # nats-server and the relays included
