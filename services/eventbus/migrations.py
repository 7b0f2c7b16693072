"""Alembic operations that create the event tables; called from each service's history.

Frozen once released: a later change to the tables is a new function for a new revision,
so that replaying an old revision always builds the schema it built the first time.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from services.database.schema import UtcDateTime

__all__ = ["create_event_tables_v1", "drop_event_tables_v1"]


def create_event_tables_v1() -> None:
    """outbox_events and inbox_events, as `services.eventbus.schema` declares them."""
    op.create_table(
        "outbox_events",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("event_type", sa.String(255), nullable=False),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("aggregate_id", sa.String(255), nullable=False),
        sa.Column("occur_time", UtcDateTime(), nullable=False),
        sa.Column("trace", sa.JSON(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("published_time", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_outbox_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_outbox_events_event_id")),
    )
    op.create_index(
        "ix_outbox_events_unpublished",
        "outbox_events",
        ["seq"],
        postgresql_where=sa.text("published_time IS NULL"),
        sqlite_where=sa.text("published_time IS NULL"),
    )
    op.create_table(
        "inbox_events",
        sa.Column("consumer", sa.String(100), nullable=False),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("event_type", sa.String(255), nullable=False),
        sa.Column("handled_time", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id", name=op.f("pk_inbox_events")),
    )


def drop_event_tables_v1() -> None:
    """Undo `create_event_tables_v1`."""
    op.drop_table("inbox_events")
    op.drop_index("ix_outbox_events_unpublished", table_name="outbox_events")
    op.drop_table("outbox_events")
