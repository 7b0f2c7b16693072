"""first_purchases: each buyer's first COMPLETED order, for the sign-up funnel.

A row is inserted (if absent) in the transaction that completes an order; the insert
that creates it is the buyer's first purchase, which makes `first_purchase` count each
buyer once across replicas and retries. Buyers who completed orders before this
revision get their first one, so their next purchase is not taken for a first.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-20
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from services.database.schema import UtcDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "first_purchases",
        sa.Column("buyer_id", sa.String(36), nullable=False),
        sa.Column("order_id", sa.String(36), nullable=False),
        sa.Column("create_time", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("buyer_id", name=op.f("pk_first_purchases")),
    )
    # Order ids are UUIDv7: the smallest of a buyer's completed orders is the oldest.
    op.execute(
        """
        INSERT INTO first_purchases (buyer_id, order_id, create_time)
        SELECT o.buyer_id, o.order_id, o.update_time FROM orders o
        WHERE o.status = 'completed' AND o.order_id = (
            SELECT MIN(c.order_id) FROM orders c
            WHERE c.buyer_id = o.buyer_id AND c.status = 'completed'
        )
        """
    )


def downgrade() -> None:
    op.drop_table("first_purchases")
