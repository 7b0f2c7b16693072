"""The local stack's data: kept across a restart, and on PostgreSQL as the README says."""

from __future__ import annotations

import sqlite3
import uuid

import asyncpg
import nats
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import POSTGRES_URL
from tests.e2e.conftest import StackFactory
from tests.e2e.stack_journeys import (
    GRPC_COMPONENTS,
    app_signs_up_and_finds_its_wallet,
)

# One file per theme, so that pytest-xdist (one file per worker) runs the themes side by
# side: each test starts stacks of its own, which is what made one file the suite's pole.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


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
        await app_signs_up_and_finds_its_wallet(f"http://{stack.address('BFF_PORT')}")
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
