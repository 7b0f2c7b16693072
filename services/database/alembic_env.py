"""The body of every service's Alembic `env.py`: run migrations on the given connection."""

from __future__ import annotations

from alembic import context
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection

__all__ = ["run_migrations"]


def run_migrations(metadata: MetaData) -> None:
    """Migrate over the connection `upgrade_to_head` handed to Alembic."""
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise SystemExit(
            "migrations run when a service starts (or with its --migrate-only flag), "
            "not from the alembic command line"
        )
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
