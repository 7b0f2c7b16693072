"""The local stack as the README starts it: `bash scripts/stack` with free ports, temp data."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import time
import uuid

import asyncpg
import grpc
import httpx
import nats
import pytest
from grpc_health.v1 import health_pb2
from sqlalchemy.engine import make_url

from scripts.localstack import COMPONENTS, READY_LINE, Readiness, http_ready_problem
from services.runtime.health_client import check_health, wait_serving
from tests.conftest import POSTGRES_URL
from tests.e2e.conftest import READY_TIMEOUT, StackFactory

GRPC_COMPONENTS = [c for c in COMPONENTS if c.readiness is Readiness.GRPC_HEALTH]

pytestmark = pytest.mark.timeout(240)


async def _health(address: str) -> int:
    async with grpc.aio.insecure_channel(address) as channel:
        return await check_health(channel, deadline=5.0)


async def _app_signs_up_and_finds_its_wallet(bff: str) -> None:
    """The mobile app's first minute, over HTTP; the services meet on their moved ports."""
    async with httpx.AsyncClient(base_url=bff, timeout=10.0) as http:
        assert (await http.get("/readyz")).json()["status"] == "ready"
        assert (await http.get("/openapi.json")).json()["info"]["title"] == "superapp BFF"
        email = f"e2e-{uuid.uuid4()}@example.com"
        registered = await http.post(
            "/v1/auth/register",
            json={"email": email, "password": "e2e password 123", "display_name": "E2E"},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        assert registered.status_code == 201, registered.text
        login = await http.post(
            "/v1/auth/login", json={"email": email, "password": "e2e password 123"}
        )
        auth = {"Authorization": f"Bearer {login.json()['tokens']['access_token']}"}
        assert (await http.get("/v1/me", headers=auth)).json()["email"] == email
        deadline = time.monotonic() + 20.0
        while (wallet := await http.get("/v1/me/wallet", headers=auth)).status_code == 404:
            assert time.monotonic() < deadline, "the wallet never opened"
            await asyncio.sleep(0.1)
        assert wallet.status_code == 200, wallet.text
        assert wallet.json()["user_id"] == registered.json()["user_id"]
        orders = await http.get("/v1/me/orders", headers=auth)
        assert orders.json() == {"orders": [], "next_page_token": None}, orders.text
        # Orders asks the catalogue with its own token, got from identity with the
        # secret the launcher provisioned: a missing product, not a missing credential.
        missing = await http.post(
            "/v1/checkout",
            json={
                "product_id": str(uuid.uuid4()),
                "quantity": 1,
                "unit_price": {"currency_code": "EUR", "amount_minor": 100},
            },
            headers={**auth, "Idempotency-Key": str(uuid.uuid4())},
        )
        assert (missing.status_code, missing.json()["reason"]) == (404, "PRODUCT_NOT_FOUND")


async def _signed_in(http: httpx.AsyncClient) -> dict[str, str]:
    email = f"e2e-{uuid.uuid4()}@example.com"
    registered = await http.post(
        "/v1/auth/register",
        json={"email": email, "password": "e2e password 123", "display_name": "E2E"},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert registered.status_code == 201, registered.text
    login = await http.post("/v1/auth/login", json={"email": email, "password": "e2e password 123"})
    return {"Authorization": f"Bearer {login.json()['tokens']['access_token']}"}


async def _until_ok(http: httpx.AsyncClient, path: str, auth: dict[str, str]) -> httpx.Response:
    deadline = time.monotonic() + 30.0
    while (reply := await http.get(path, headers=auth)).status_code != 200:
        assert time.monotonic() < deadline, f"{path}: {reply.status_code} {reply.text}"
        await asyncio.sleep(0.1)
    return reply


async def test_stack_serves_every_component_and_stops_cleanly(make_stack: StackFactory) -> None:
    stack = make_stack().start()
    await stack.wait_ready()

    pids = stack.pids()
    assert set(pids) == {"nats-server", *(c.name for c in COMPONENTS)}
    relays = stack.relay_pids()
    assert set(relays) == {c.name for c in GRPC_COMPONENTS}
    for component in GRPC_COMPONENTS:
        assert await _health(stack.address(component.port_variable)) == (
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
    await _app_signs_up_and_finds_its_wallet(f"http://{stack.address('BFF_PORT')}")
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
        auth = await _signed_in(http)
        signed_up = time.monotonic()
        wallet = await _until_ok(http, "/v1/me/wallet", auth)
        took = time.monotonic() - signed_up
    assert wallet.json()["balances"] == []
    assert took < WALLET_WITHIN, f"the wallet took {took:.1f}s to open"


async def test_restart_on_the_same_data_dir_keeps_databases_and_streams(
    make_stack: StackFactory,
) -> None:
    first = make_stack().start()
    await first.wait_ready()
    client = await nats.connect(first.nats_url, connect_timeout=5, allow_reconnect=False)
    try:
        stream = client.jetstream()
        await stream.add_stream(name="E2E_RESTART", subjects=["e2e.restart"])
        await stream.publish("e2e.restart", b"kept")
    finally:
        await client.close()
    first.terminate()
    assert await first.wait_exit() == 0
    databases = {c.name: first.data_dir / f"{c.name}.db" for c in GRPC_COMPONENTS}
    inodes = {name: path.stat().st_ino for name, path in databases.items()}
    for path in databases.values():
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE e2e_marker (note TEXT)")
        db.close()

    second = make_stack(first.data_dir).start()
    await second.wait_ready()
    client = await nats.connect(second.nats_url, connect_timeout=5, allow_reconnect=False)
    try:
        info = await client.jetstream().stream_info("E2E_RESTART")
        assert info.state.messages == 1
    finally:
        await client.close()
    second.terminate()
    assert await second.wait_exit() == 0

    assert {name: path.stat().st_ino for name, path in databases.items()} == inodes
    for path in databases.values():
        with sqlite3.connect(path) as db:
            assert db.execute("SELECT count(*) FROM e2e_marker").fetchone() == (0,)
        db.close()


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
        code = await stack.wait_exit(within=20.0)

    assert code != 0
    message = stack.stderr.strip()
    assert f"port {port} is already in use" in message
    assert variable in message
    assert len(message.splitlines()) == 1, message
    assert stack.pids() == {}


async def test_a_service_that_cannot_start_is_named_and_the_rest_stop(
    make_stack: StackFactory,
) -> None:
    stack = make_stack(IDENTITY_DATABASE_URL="postgresql+asyncpg://nobody@127.0.0.1:1/x").start()
    code = await stack.wait_exit(within=READY_TIMEOUT)

    assert code != 0
    assert "stack: identity exited with code 1 during start-up" in stack.stderr
    assert "identity: cannot start: IDENTITY_DATABASE_URL" in stack.stderr
    assert READY_LINE not in stack.stdout
    await stack.wait_gone(stack.pids(), within=1.0)


# A route of the BFF that needs each service, for the signed-in user.
_ROUTE_NEEDING = {
    "identity": "/v1/me",
    "wallet": "/v1/me/wallet",
    "catalogue": "/v1/categories",
    "orders": "/v1/me/orders",
}
RESTART_WITHIN = 10.0
"""How soon a killed service must be SERVING again (the issue's bound), unless the
machine is so loaded that the whole stack took longer than that to start at first."""


async def test_a_killed_service_is_started_again_and_nothing_else_is(
    make_stack: StackFactory,
) -> None:
    started = time.monotonic()
    stack = make_stack().start()
    await stack.wait_ready()
    bound = max(RESTART_WITHIN, time.monotonic() - started)
    bff = f"http://{stack.address('BFF_PORT')}"
    async with httpx.AsyncClient(base_url=bff, timeout=10.0) as http:
        auth = await _signed_in(http)
        await _until_ok(http, "/v1/me/wallet", auth)  # the wallet has opened
        for component in GRPC_COMPONENTS:
            # A service the BFF does not call yet (miniapps) has no route to watch.
            name, path = component.name, _ROUTE_NEEDING.get(component.name)
            before = stack.pids()
            os.kill(before[name], signal.SIGKILL)
            killed = time.monotonic()
            await stack.wait_gone({name: before[name]}, within=5.0)

            # Meanwhile the BFF says, in its own words, that the service is unavailable.
            if path is not None:
                outage = await http.get(path, headers=auth)
                assert outage.status_code == 503, (name, outage.text)
                assert outage.headers["content-type"] == "application/problem+json"
                assert outage.json()["status"] == 503

            address = stack.address(component.port_variable)
            async with grpc.aio.insecure_channel(address) as channel, asyncio.timeout(60):
                await wait_serving(channel)
            took = time.monotonic() - killed
            assert took < bound, f"{name} SERVING again after {took:.1f}s (bound {bound:.1f}s)"
            after = stack.pids()
            assert after[name] != before[name]
            assert {k: v for k, v in after.items() if k != name} == {
                k: v for k, v in before.items() if k != name
            }, "another component was restarted"
            # The same BFF process serves the route again by itself.
            if path is not None:
                assert (await _until_ok(http, path, auth)).status_code == 200
    assert f"stack: {name} was killed by SIGKILL; starting it again" in stack.stderr
    assert READY_LINE in stack.stdout
    assert stack.process is not None
    assert stack.process.poll() is None  # still running
    stack.terminate()
    assert await stack.wait_exit() == 0


async def test_a_service_that_keeps_crashing_stops_the_stack_with_a_report(
    make_stack: StackFactory,
) -> None:
    stack = make_stack().start()
    await stack.wait_ready()
    pids = stack.pids()
    os.kill(pids["wallet"], signal.SIGKILL)
    await stack.wait_gone({"wallet": pids["wallet"]}, within=5.0)
    # Its database replaced by a directory, every restart of the wallet fails at once.
    database = stack.data_dir / "wallet.db"
    database.rename(database.with_suffix(".db.moved"))
    database.mkdir()
    assert await stack.wait_exit(within=120.0) == 1

    assert "stack: wallet exited with code 1: 5 crashes within 60s; giving up" in stack.stderr
    assert "wallet: cannot start: WALLET_DATABASE_URL" in stack.stderr
    await stack.wait_gone(stack.pids(), within=1.0)


async def test_every_child_dies_with_a_killed_launcher(make_stack: StackFactory) -> None:
    stack = make_stack().start()
    await stack.wait_ready()
    pids = stack.pids()
    relays = stack.relay_pids()
    assert stack.process is not None

    # `scripts/stack` execs the launcher, so the pid we hold is the launcher's.
    stack.process.kill()
    stack.process.wait()

    await stack.wait_gone({**pids, **relays})  # nats-server and the relays included


async def test_components_not_ready_in_time_are_named_and_stopped(
    make_stack: StackFactory,
) -> None:
    stack = make_stack(args=("--startup-timeout", "0.2")).start()
    code = await stack.wait_exit(within=READY_TIMEOUT)

    assert code != 0
    assert "stack: not ready after 0.2s: identity (" in stack.stderr
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


@pytest.mark.postgres
async def test_the_readmes_postgresql_mode_on_a_server_without_our_databases(
    make_stack: StackFactory,
) -> None:
    admin_url = make_url(POSTGRES_URL)
    names = {c.name: f"superapp_e2e_{c.name}_{uuid.uuid4().hex[:8]}" for c in GRPC_COMPONENTS}
    urls = {
        f"{c.env_prefix}DATABASE_URL": admin_url.set(database=names[c.name]).render_as_string(
            hide_password=False
        )
        for c in GRPC_COMPONENTS
    }
    try:
        stack = make_stack(**urls).start()
        await stack.wait_ready()
        await _app_signs_up_and_finds_its_wallet(f"http://{stack.address('BFF_PORT')}")
        stack.terminate()
        assert await stack.wait_exit() == 0
    finally:
        connection = await asyncpg.connect(
            host=admin_url.host,
            port=admin_url.port,
            user=admin_url.username,
            database=admin_url.database,
        )
        try:
            made = {
                row["datname"]
                for row in await connection.fetch(
                    "SELECT datname FROM pg_database WHERE datname LIKE 'superapp_e2e_%'"
                )
            }
            for name in names.values():
                await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()
    assert set(names.values()) <= made
