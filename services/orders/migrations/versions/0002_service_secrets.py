"""service_secrets: the key of orders' page tokens, shared by every replica.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from services.database.secret_migrations import (
    create_service_secrets_v1,
    drop_service_secrets_v1,
)

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_service_secrets_v1()


def downgrade() -> None:
    drop_service_secrets_v1()
