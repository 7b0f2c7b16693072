"""Alembic operations on the `idempotency_keys` table; called from each service's history.

Frozen once released, like `services.eventbus.migrations`: a later change is a new
function for a new revision.
"""

from __future__ import annotations

from alembic import op

__all__ = ["create_retention_index_v1", "drop_retention_index_v1"]

_INDEX = "ix_idempotency_keys_create_time"


def create_retention_index_v1() -> None:
    """The index that lets old keys be forgotten oldest first without a scan."""
    op.create_index(_INDEX, "idempotency_keys", ["create_time"])


def drop_retention_index_v1() -> None:
    """Undo `create_retention_index_v1`."""
    op.drop_index(_INDEX, table_name="idempotency_keys")
