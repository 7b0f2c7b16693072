"""Secrets a service shares between all its replicas, kept in the service's own database.

A replica holds no state another needs (see ARCHITECTURE.md): a secret that every process
of a service must agree on, such as the key of its page tokens, lives in the service's
database, not in a file on one host. The first process to need one makes it; processes
starting together converge on one value (insert if absent, then read back).
"""

from __future__ import annotations

import secrets

from sqlalchemy import (
    Column,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    select,
)

from services.database.engine import Database
from services.database.insert_if_absent import insert_if_absent
from services.database.schema import UtcDateTime
from services.runtime.clock import Clock

__all__ = ["SECRET_BYTES", "service_secret", "service_secrets_table"]

SECRET_BYTES = 32
"""The length of a secret the service makes itself."""


def service_secrets_table(metadata: MetaData) -> Table:
    """Declare the `service_secrets` table on a service's metadata (its migration:
    `services.database.secret_migrations.create_service_secrets_v1`)."""
    return Table(
        "service_secrets",
        metadata,
        Column("name", String(64), nullable=False),
        Column("value", LargeBinary(), nullable=False),
        Column("create_time", UtcDateTime(), nullable=False),
        PrimaryKeyConstraint("name"),
    )


async def service_secret(database: Database, table: Table, name: str, clock: Clock) -> bytes:
    """The secret called `name`, made of random bytes by the first process that asks."""
    read = select(table.c.value).where(table.c.name == name)
    async with database.read() as session:
        found: bytes | None = (await session.execute(read)).scalar_one_or_none()
    if found is not None:
        return found
    async with database.write() as session:
        # Another process may insert first (and wins); this reads its value.
        await session.execute(
            insert_if_absent(database, table).values(
                name=name, value=secrets.token_bytes(SECRET_BYTES), create_time=clock.now()
            )
        )
        value: bytes = (await session.execute(read)).scalar_one()
    return value
