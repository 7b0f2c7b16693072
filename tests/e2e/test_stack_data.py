"""The local stack's data on PostgreSQL, as the README says.

(That a restart on the same data dir keeps the SQLite databases and the streams is
proven in test_stack_serving.py, on that file's shared stack.)
"""

from __future__ import annotations

import uuid

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import POSTGRES_URL
from tests.e2e.conftest import StackFactory
from tests.e2e.stack_journeys import (
    GRPC_COMPONENTS,
    app_signs_up_and_finds_its_wallet,
)

pytestmark = [pytest.mark.slow(seconds=25), pytest.mark.timeout(600)]


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
