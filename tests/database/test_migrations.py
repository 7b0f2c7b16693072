"""Each service's Alembic history builds exactly the schema its models declare."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection

from services.catalogue.models import Base as CatalogueBase
from services.database import Database, upgrade_to_head
from services.database.schema import is_managed
from services.identity.models import Base as IdentityBase
from services.miniapps.models import Base as MiniAppsBase
from services.orders.models import Base as OrdersBase
from services.wallet.models import Base as WalletBase
from tests.conftest import ROOT

HISTORIES = [
    ("identity", IdentityBase.metadata),
    ("wallet", WalletBase.metadata),
    ("catalogue", CatalogueBase.metadata),
    ("orders", OrdersBase.metadata),
    ("miniapps", MiniAppsBase.metadata),
]


def _differences(connection: Connection, metadata: MetaData) -> list[Any]:
    context = MigrationContext.configure(
        connection,
        opts={
            "compare_type": True,
            "include_name": lambda name, _type, _parents: is_managed(metadata, name),
        },
    )
    return [
        diff
        for diff in compare_metadata(context, metadata)
        if diff[0] != "remove_table" or diff[1].name != "alembic_version"
    ]


@pytest.mark.parametrize(("service", "metadata"), HISTORIES, ids=[h[0] for h in HISTORIES])
async def test_migrations_match_models(service: str, metadata: MetaData, database_url: str) -> None:
    database = Database.connect(database_url)
    try:
        await upgrade_to_head(database, ROOT / "services" / service / "migrations")
        async with database.engine.connect() as connection:
            differences = await connection.run_sync(_differences, metadata)
    finally:
        await database.dispose()
    assert differences == []


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_concurrent_starters_migrate_once(database_url: str) -> None:
    """Several processes of one service starting together must not race their DDL."""
    databases = [Database.connect(database_url) for _ in range(4)]
    migrations: Path = ROOT / "services" / "catalogue" / "migrations"
    try:
        await asyncio.gather(*(upgrade_to_head(db, migrations) for db in databases))
    finally:
        for db in databases:
            await db.dispose()
