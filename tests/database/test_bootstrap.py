"""Opening a service's database on a PostgreSQL server that does not have it yet."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from services.database import DatabaseUnavailable, open_database
from tests.conftest import POSTGRES_URL, ROOT

pytestmark = pytest.mark.postgres

MIGRATIONS = ROOT / "services" / "wallet" / "migrations"


async def _admin() -> asyncpg.Connection:
    url = make_url(POSTGRES_URL)
    try:
        return await asyncpg.connect(
            host=url.host, port=url.port, user=url.username, database=url.database
        )
    except (OSError, asyncpg.PostgresError) as error:
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {error}")


@pytest.fixture
async def missing_database() -> AsyncIterator[str]:
    """The URL of a database the server does not have; dropped afterwards if made."""
    name = f"superapp_missing_{uuid.uuid4().hex[:12]}"
    yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    admin = await _admin()
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def _exists(name: str) -> bool:
    admin = await _admin()
    try:
        return bool(await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await admin.close()


async def test_a_missing_database_is_created_and_migrated(missing_database: str) -> None:
    name = make_url(missing_database).database
    assert name is not None
    assert not await _exists(name)

    # Two replicas of a service starting together on a fresh server.
    databases = await asyncio.gather(
        *(
            open_database(missing_database, MIGRATIONS, setting="WALLET_DATABASE_URL")
            for _ in range(2)
        )
    )
    try:
        assert await _exists(name)
        for database in databases:
            await database.ping()
    finally:
        for database in databases:
            await database.dispose()


async def test_a_role_that_may_not_create_it_is_told_how(missing_database: str) -> None:
    role = f"superapp_nocreate_{uuid.uuid4().hex[:8]}"
    admin = await _admin()
    try:
        await admin.execute(f'CREATE ROLE "{role}" LOGIN NOCREATEDB')
        url = make_url(missing_database).set(username=role).render_as_string(hide_password=False)
        with pytest.raises(DatabaseUnavailable) as refused:
            await open_database(url, MIGRATIONS, setting="WALLET_DATABASE_URL")
    finally:
        await admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        await admin.close()

    message = str(refused.value)
    assert message.startswith("WALLET_DATABASE_URL: database superapp_missing_")
    assert "does not exist and cannot be created" in message
    assert "createdb" in message
