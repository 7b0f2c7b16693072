"""An index on idempotency_keys.create_time, so that expired keys can be forgotten.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from services.database.idempotency_migrations import (
    create_retention_index_v1,
    drop_retention_index_v1,
)

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_retention_index_v1()


def downgrade() -> None:
    drop_retention_index_v1()
