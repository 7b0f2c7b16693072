"""versions.permissions: what a version's manifest requests, the OAuth scopes a user may
grant the mini-app once the version is published (identity learns them from events).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Versions checked before this revision read as requesting nothing until checked again.
    op.add_column(
        "versions",
        sa.Column("permissions", sa.JSON(), nullable=False, server_default=sa.text("'[]'")),
    )


def downgrade() -> None:
    with op.batch_alter_table("versions") as batch:
        batch.drop_column("permissions")
