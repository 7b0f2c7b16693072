"""payment_requests: the settler's claim on confirmed payments whose order is not final
(due time, attempts, lease), and the indexes the settler and the expiry sweep scan by.
DECLINED joins the states (a string column: no schema change).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from services.database.schema import UtcDateTime

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("payment_requests") as batch:
        batch.add_column(sa.Column("next_settle_time", UtcDateTime(), nullable=True))
        batch.add_column(
            sa.Column("settle_attempts", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("settle_holder", sa.String(36), nullable=True))
        batch.add_column(sa.Column("settle_lease_expire_time", UtcDateTime(), nullable=True))
    op.create_index(
        "ix_payment_requests_state_next_settle_time",
        "payment_requests",
        ["state", "next_settle_time"],
    )
    op.create_index(
        "ix_payment_requests_state_expire_time", "payment_requests", ["state", "expire_time"]
    )


def downgrade() -> None:
    op.drop_index("ix_payment_requests_state_expire_time", table_name="payment_requests")
    op.drop_index("ix_payment_requests_state_next_settle_time", table_name="payment_requests")
    with op.batch_alter_table("payment_requests") as batch:
        batch.drop_column("settle_lease_expire_time")
        batch.drop_column("settle_holder")
        batch.drop_column("settle_attempts")
        batch.drop_column("next_settle_time")
