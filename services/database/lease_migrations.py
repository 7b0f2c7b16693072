"""Alembic operations on the `leases` table; called from each service's history.

Frozen once released, like `services.eventbus.migrations`: a later change is a new
function for a new revision.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from services.database.schema import UtcDateTime

__all__ = ["create_leases_v1", "drop_leases_v1"]


def create_leases_v1() -> None:
    """`leases`, as `services.database.leases` declares it."""
    op.create_table(
        "leases",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("expire_time", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )


def drop_leases_v1() -> None:
    """Undo `create_leases_v1`."""
    op.drop_table("leases")
