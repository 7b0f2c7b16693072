"""The local stack as the README starts it: serving every component on free ports, the
commands its banner and the README print, a restart on the same data, a crash loop.

The tests share one stack (see `SharedStack`), in this order: those that only read or
sign up users of their own first, then the one that stops and starts it again on the
same data dir, and last the one that makes it give up. Each also runs alone.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import time

import httpx
import nats
import pytest
from grpc_health.v1 import health_pb2

from scripts.localstack import COMPONENTS
from tests.e2e.conftest import SharedStack, SharedStackFactory
from tests.e2e.readme_snippets import banner_commands, bash_block_after, on_test_ports, run_bash
from tests.e2e.stack_journeys import (
    GRPC_COMPONENTS,
    app_signs_up_and_finds_its_wallet,
    health,
    signed_in,
    until_ok,
)

pytestmark = [pytest.mark.slow(seconds=50), pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def stack(shared_stack: SharedStackFactory) -> SharedStack:
    # Five crashes within a window: on a loaded machine each restart takes its time, so
    # for the crash-loop test the window is wide enough for five of them (the
    # launcher's default is 60 s). The README's operator steps need a bootstrap admin.
    return shared_stack(("--crash-window", "600"), IDENTITY_BOOTSTRAP_ADMIN_EMAIL="ops@example.com")


WALLET_WITHIN = 2.0
"""From a sign-up answered right after `ready` to its wallet being readable."""


async def test_ready_means_a_sign_up_at_once_finds_its_wallet(stack: SharedStack) -> None:
    running = await stack.running()
    # What "ready" promises: every stream is declared and the wallet's consumer is bound.
    client = await nats.connect(running.nats_url, connect_timeout=5, allow_reconnect=False)
    try:
        jetstream = client.jetstream()
        streams = {info.config.name for info in await jetstream.streams_info()}
        consumer = await jetstream.consumer_info("SUPERAPP_IDENTITY", "wallet")
    finally:
        await client.close()
    assert streams >= {f"SUPERAPP_{c.name.upper()}" for c in GRPC_COMPONENTS}
    assert consumer.config.durable_name == "wallet"

    async with httpx.AsyncClient(
        base_url=f"http://{running.address('BFF_PORT')}", timeout=10.0
    ) as http:
        auth = await signed_in(http)
        signed_up = time.monotonic()
        wallet = await until_ok(http, "/v1/me/wallet", auth)
        took = time.monotonic() - signed_up
    assert wallet.json()["balances"] == []
    assert took < WALLET_WITHIN, f"the wallet took {took:.1f}s to open"


async def test_stack_serves_every_component(stack: SharedStack) -> None:
    running = await stack.running()

    pids = running.pids()
    assert set(pids) == {"nats-server", *(c.name for c in COMPONENTS)}
    relays = running.relay_pids()
    assert set(relays) == {c.name for c in GRPC_COMPONENTS}
    for component in GRPC_COMPONENTS:
        assert await health(running.address(component.port_variable)) == (
            health_pb2.HealthCheckResponse.SERVING
        ), component.name
        assert running.address(component.port_variable) in running.stdout
    client = await nats.connect(running.nats_url, connect_timeout=5, allow_reconnect=False)
    try:
        account = await client.jetstream().account_info()
        assert account.limits is not None
    finally:
        await client.close()
    assert running.nats_url in running.stdout
    await app_signs_up_and_finds_its_wallet(f"http://{running.address('BFF_PORT')}")
    for secret in (
        "orders-client-secret",
        "miniapps-client-secret",
        "bff-client-secret",
        "identity-key-encryption-key",
    ):
        assert (running.data_dir / "secrets" / secret).stat().st_mode & 0o777 == 0o600
    assert f"http://{running.address('BFF_PORT')}" in running.stdout
    for component in COMPONENTS:
        # Every server keeps the collector off its start-up heap (services.runtime.heap):
        # one such record per start of the process.
        listening = [
            record
            for record in running.log_records(component.name)
            if "listening on port" in str(record.get("message"))
        ]
        starts = len(re.findall(rf"^stack: {component.name} pid ", running.stderr, re.M))
        assert len(listening) == starts == 1, component.name
        frozen = listening[0].get("frozen_objects")
        assert isinstance(frozen, int), component.name
        assert frozen > 50_000, component.name


async def test_the_banner_and_the_readme_commands_work_as_written(stack: SharedStack) -> None:
    """Every command the stack's banner and the README's walkthroughs print works as
    written; each `127.0.0.1:<default port>` of a snippet is pointed at the test's
    component first (the README addresses the default ports)."""
    running = await stack.running()

    commands = banner_commands(running.stdout)
    assert len(commands) == len(COMPONENTS) + 1  # a listing per service, readyz and OpenAPI
    for command in commands:
        code, out, err = await run_bash(command, running)
        assert code == 0, (command, err)
        assert out.strip(), command

    code, out, err = await run_bash(
        on_test_ports(bash_block_after("--list-methods http://127.0.0.1:7103"), running), running
    )
    assert code == 0, err
    assert "superapp.catalogue.v1.CatalogueService/ListCategories" in out
    assert '"status": "SERVING"' in out

    code, out, err = await run_bash(
        on_test_ports(bash_block_after("# the operator's first steps"), running), running
    )
    assert code == 0, err
    roles, category_id, kind = out.split("\n")[:3]
    assert roles == "['ROLE_USER', 'ROLE_MERCHANT']"
    assert re.fullmatch(r"[0-9a-f-]{36}", category_id)
    assert kind == "CREDIT"


async def test_the_stack_stops_cleanly_and_a_restart_on_its_data_dir_keeps_databases_and_streams(
    stack: SharedStack,
) -> None:
    first = await stack.running()
    pids = first.pids()
    relays = first.relay_pids()
    assert set(relays) == {c.name for c in GRPC_COMPONENTS}
    client = await nats.connect(first.nats_url, connect_timeout=5, allow_reconnect=False)
    try:
        stream = client.jetstream()
        await stream.add_stream(name="E2E_RESTART", subjects=["e2e.restart"])
        await stream.publish("e2e.restart", b"kept")
    finally:
        await client.close()
    first.terminate()
    assert await first.wait_exit() == 0
    # Stopping cleanly: nothing of it outlives the launcher, relays included.
    await first.wait_gone({**pids, **relays}, within=1.0)
    databases = {c.name: first.data_dir / f"{c.name}.db" for c in GRPC_COMPONENTS}
    inodes = {name: path.stat().st_ino for name, path in databases.items()}
    for path in databases.values():
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE e2e_marker (note TEXT)")
        db.close()

    second = await stack.start_again()
    client = await nats.connect(second.nats_url, connect_timeout=5, allow_reconnect=False)
    try:
        info = await client.jetstream().stream_info("E2E_RESTART")
        assert info.state.messages == 1
    finally:
        await client.close()

    # The services started on the files they had: none was recreated or migrated away.
    assert {name: path.stat().st_ino for name, path in databases.items()} == inodes
    for path in databases.values():
        with sqlite3.connect(path) as db:
            assert db.execute("SELECT count(*) FROM e2e_marker").fetchone() == (0,)
        db.close()


@pytest.mark.timeout(900)
async def test_a_service_that_keeps_crashing_stops_the_stack_with_a_report(
    stack: SharedStack,
) -> None:
    running = await stack.running()
    pids = running.pids()
    os.kill(pids["wallet"], signal.SIGKILL)
    await running.wait_gone({"wallet": pids["wallet"]}, within=5.0)
    # Its database replaced by a directory, every restart of the wallet fails at once.
    database = running.data_dir / "wallet.db"
    database.rename(database.with_suffix(".db.moved"))
    database.mkdir()
    assert await running.wait_exit(within=400.0) == 1

    assert "stack: wallet exited with code 1: 5 crashes within 600s; giving up" in running.stderr
    assert "wallet: cannot start: WALLET_DATABASE_URL" in running.stderr
    await running.wait_gone(running.pids(), within=1.0)
