"""When a mini-app client's standing last changed at miniapps, so that a suspension and
a reinstatement applied out of order (a retried event) leave the later one in force.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from services.database.schema import UtcDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("oauth_clients", sa.Column("status_time", UtcDateTime(), nullable=True))


def downgrade() -> None:
    op.drop_column("oauth_clients", "status_time")
