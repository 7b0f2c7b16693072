"""leases: which of identity's replicas publishes its outbox (see services.database.leases).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from services.database.lease_migrations import create_leases_v1, drop_leases_v1

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_leases_v1()


def downgrade() -> None:
    drop_leases_v1()
