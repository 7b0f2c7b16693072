"""payment orders: an order's kind, and a payment order's description and origin.

Orders made before this revision are product orders with no description.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "orders",
        sa.Column("kind", sa.String(16), nullable=False, server_default=sa.text("'product'")),
    )
    op.add_column(
        "orders",
        sa.Column("description", sa.String(200), nullable=False, server_default=sa.text("''")),
    )
    op.add_column("orders", sa.Column("mini_app_id", sa.String(36), nullable=True))
    op.add_column("orders", sa.Column("payment_request_id", sa.String(36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("payment_request_id")
        batch.drop_column("mini_app_id")
        batch.drop_column("description")
        batch.drop_column("kind")
