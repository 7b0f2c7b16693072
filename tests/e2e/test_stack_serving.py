"""The local stack as the README starts it, serving: every component, on free ports."""

from __future__ import annotations

import time

import httpx
import nats
import pytest
from grpc_health.v1 import health_pb2

from scripts.localstack import COMPONENTS
from tests.e2e.conftest import StackFactory
from tests.e2e.stack_journeys import (
    GRPC_COMPONENTS,
    app_signs_up_and_finds_its_wallet,
    health,
    signed_in,
    until_ok,
)

# One file per theme, so that pytest-xdist (one file per worker) runs the themes side by
# side: each test starts stacks of its own, which is what made one file the suite's pole.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


async def test_stack_serves_every_component_and_stops_cleanly(make_stack: StackFactory) -> None:
    stack = make_stack().start()
    await stack.wait_ready()

    pids = stack.pids()
    assert set(pids) == {"nats-server", *(c.name for c in COMPONENTS)}
    relays = stack.relay_pids()
    assert set(relays) == {c.name for c in GRPC_COMPONENTS}
    for component in GRPC_COMPONENTS:
        assert await health(stack.address(component.port_variable)) == (
            health_pb2.HealthCheckResponse.SERVING
        ), component.name
        assert stack.address(component.port_variable) in stack.stdout
    client = await nats.connect(stack.nats_url, connect_timeout=5, allow_reconnect=False)
    try:
        account = await client.jetstream().account_info()
        assert account.limits is not None
    finally:
        await client.close()
    assert stack.nats_url in stack.stdout
    await app_signs_up_and_finds_its_wallet(f"http://{stack.address('BFF_PORT')}")
    for secret in (
        "orders-client-secret",
        "miniapps-client-secret",
        "bff-client-secret",
        "identity-key-encryption-key",
    ):
        assert (stack.data_dir / "secrets" / secret).stat().st_mode & 0o777 == 0o600
    assert f"http://{stack.address('BFF_PORT')}" in stack.stdout
    for component in COMPONENTS:
        # Every server keeps the collector off its start-up heap (services.runtime.heap).
        listening = [
            record
            for record in stack.log_records(component.name)
            if "listening on port" in str(record.get("message"))
        ]
        assert len(listening) == 1, component.name
        frozen = listening[0].get("frozen_objects")
        assert isinstance(frozen, int), component.name
        assert frozen > 50_000, component.name

    stack.terminate()
    assert await stack.wait_exit() == 0
    await stack.wait_gone({**pids, **relays}, within=1.0)


WALLET_WITHIN = 2.0
"""From a sign-up answered right after `ready` to its wallet being readable."""


async def test_ready_means_a_sign_up_at_once_finds_its_wallet(make_stack: StackFactory) -> None:
    stack = make_stack().start()
    await stack.wait_ready()
    # What "ready" promises: every stream is declared and the wallet's consumer is bound.
    client = await nats.connect(stack.nats_url, connect_timeout=5, allow_reconnect=False)
    try:
        jetstream = client.jetstream()
        streams = {info.config.name for info in await jetstream.streams_info()}
        consumer = await jetstream.consumer_info("SUPERAPP_IDENTITY", "wallet")
    finally:
        await client.close()
    assert streams >= {f"SUPERAPP_{c.name.upper()}" for c in GRPC_COMPONENTS}
    assert consumer.config.durable_name == "wallet"

    async with httpx.AsyncClient(
        base_url=f"http://{stack.address('BFF_PORT')}", timeout=10.0
    ) as http:
        auth = await signed_in(http)
        signed_up = time.monotonic()
        wallet = await until_ok(http, "/v1/me/wallet", auth)
        took = time.monotonic() - signed_up
    assert wallet.json()["balances"] == []
    assert took < WALLET_WITHIN, f"the wallet took {took:.1f}s to open"
