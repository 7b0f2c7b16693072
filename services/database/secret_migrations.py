"""Alembic operations on the `service_secrets` table; called from each service's history.

Frozen once released, like `services.eventbus.migrations`: a later change is a new
function for a new revision. A service that needs shared secrets (page tokens, say)
calls `create_service_secrets_v1` from one revision of its own history.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from services.database.schema import UtcDateTime

__all__ = ["create_service_secrets_v1", "drop_service_secrets_v1"]


def create_service_secrets_v1() -> None:
    """`service_secrets`, as `services.database.service_secrets` declares it."""
    op.create_table(
        "service_secrets",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.Column("create_time", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_service_secrets")),
    )


def drop_service_secrets_v1() -> None:
    """Undo `create_service_secrets_v1`."""
    op.drop_table("service_secrets")
