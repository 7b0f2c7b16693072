"""payment_requests: what a mini-app's backend asks a user to pay, until the user
confirms it in the shell and the payment's outcome is known.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
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
        "payment_requests",
        sa.Column("payment_request_id", sa.String(36), nullable=False),
        sa.Column("mini_app_id", sa.String(36), nullable=False),
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("merchant_id", sa.String(36), nullable=False),
        sa.Column("currency_code", sa.String(3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("description", sa.String(200), nullable=False),
        sa.Column("idempotency_key", sa.String(128), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("order_id", sa.String(36), nullable=True),
        sa.Column("failure_reason", sa.String(64), nullable=False),
        sa.Column("expire_time", UtcDateTime(), nullable=False),
        sa.Column("confirm_time", UtcDateTime(), nullable=True),
        sa.Column("create_time", UtcDateTime(), nullable=False),
        sa.Column("update_time", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["mini_app_id"],
            ["mini_apps.mini_app_id"],
            name=op.f("fk_payment_requests_mini_app_id_mini_apps"),
        ),
        sa.PrimaryKeyConstraint("payment_request_id", name=op.f("pk_payment_requests")),
        sa.UniqueConstraint(
            "mini_app_id", "idempotency_key", name=op.f("uq_payment_requests_mini_app_id")
        ),
    )


def downgrade() -> None:
    op.drop_table("payment_requests")
