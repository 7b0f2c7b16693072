"""INSERT that leaves an existing row alone, on both backends.

The way replicas that start together agree on one value: each inserts if absent, then
reads back whichever row won. On PostgreSQL a conflicting insert waits for the first
one's commit, on SQLite for its write lock, so the read that follows sees the winner.
"""

from __future__ import annotations

from sqlalchemy import Insert, Table
from sqlalchemy.dialects import postgresql, sqlite

from services.database.engine import Database

__all__ = ["insert_if_absent"]


def insert_if_absent(database: Database, table: Table) -> Insert:
    """An INSERT into `table` that does nothing where it would break a unique constraint."""
    if database.dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    return postgresql.insert(table).on_conflict_do_nothing()
