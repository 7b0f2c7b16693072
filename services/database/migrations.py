"""Apply a service's Alembic history at start-up, safely when several processes start at once."""

from __future__ import annotations

import zlib
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection

from services.database.engine import Database

__all__ = ["alembic_config", "upgrade_to_head"]


def alembic_config(connection: Connection, script_location: Path) -> Config:
    """Alembic's configuration for the history under `script_location`, run on
    `connection` (inside the caller's transaction)."""
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection, script_location: Path) -> None:
    command.upgrade(alembic_config(connection, script_location), "head")


async def upgrade_to_head(database: Database, script_location: Path) -> None:
    """Bring the schema to the newest revision under `script_location`.

    On PostgreSQL a transaction-scoped advisory lock serialises concurrent starters of
    the same service; SQLite's `BEGIN IMMEDIATE` does the same for its single file.
    """
    async with database.write_connection() as connection:
        if database.dialect == "postgresql":
            key = zlib.crc32(f"superapp.migrations.{script_location.parent.name}".encode())
            await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
        await connection.run_sync(_upgrade, script_location)
