"""The outbox and inbox tables, which live in each service's own database."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
)

from services.database.leases import leases_table
from services.database.schema import UtcDateTime

__all__ = ["EventTables", "event_tables"]

# SQLite only auto-increments an INTEGER PRIMARY KEY (its rowid).
_Sequence = BigInteger().with_variant(Integer(), "sqlite")


class EventTables:
    """The outbox (events to publish, in commit order), the inbox (events handled) and
    the leases that say which replica publishes (see `services.database.leases`)."""

    def __init__(self, metadata: MetaData) -> None:
        self.outbox = Table(
            "outbox_events",
            metadata,
            Column("seq", _Sequence, primary_key=True, autoincrement=True),
            Column("event_id", String(36), nullable=False, unique=True),
            Column("subject", String(255), nullable=False),
            Column("event_type", String(255), nullable=False),
            Column("source", String(100), nullable=False),
            Column("aggregate_id", String(255), nullable=False),
            Column("occur_time", UtcDateTime(), nullable=False),
            Column("trace", JSON(), nullable=False),
            Column("payload", LargeBinary(), nullable=False),
            Column("published_time", UtcDateTime(), nullable=True),
        )
        # The relay's scan touches only unpublished rows, however large the history.
        Index(
            "ix_outbox_events_unpublished",
            self.outbox.c.seq,
            postgresql_where=self.outbox.c.published_time.is_(None),
            sqlite_where=self.outbox.c.published_time.is_(None),
        )
        self.inbox = Table(
            "inbox_events",
            metadata,
            Column("consumer", String(100), nullable=False),
            Column("event_id", String(36), nullable=False),
            Column("event_type", String(255), nullable=False),
            Column("handled_time", UtcDateTime(), nullable=False),
            PrimaryKeyConstraint("consumer", "event_id"),
        )
        self.leases = leases_table(metadata)


def event_tables(metadata: MetaData) -> EventTables:
    """Declare the outbox, inbox and leases tables on a service's metadata."""
    return EventTables(metadata)
