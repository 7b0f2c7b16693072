"""webhook_endpoints and webhook_deliveries: where a mini-app's backend hears of its
payments, and the outbox of signed deliveries to it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from services.database.schema import UtcDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "webhook_endpoints",
        sa.Column("mini_app_id", sa.String(36), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("secret", sa.String(80), nullable=False),
        sa.Column("create_time", UtcDateTime(), nullable=False),
        sa.Column("update_time", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["mini_app_id"],
            ["mini_apps.mini_app_id"],
            name=op.f("fk_webhook_endpoints_mini_app_id_mini_apps"),
        ),
        sa.PrimaryKeyConstraint("mini_app_id", name=op.f("pk_webhook_endpoints")),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("mini_app_id", sa.String(36), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_time", UtcDateTime(), nullable=False),
        sa.Column("holder", sa.String(36), nullable=True),
        sa.Column("lease_expire_time", UtcDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("create_time", UtcDateTime(), nullable=False),
        sa.Column("update_time", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["mini_app_id"],
            ["mini_apps.mini_app_id"],
            name=op.f("fk_webhook_deliveries_mini_app_id_mini_apps"),
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_webhook_deliveries")),
    )
    op.create_index(
        "ix_webhook_deliveries_state_next_attempt_time",
        "webhook_deliveries",
        ["state", "next_attempt_time"],
    )
    op.create_index(
        "ix_webhook_deliveries_mini_app_id_event_id",
        "webhook_deliveries",
        ["mini_app_id", "event_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_mini_app_id_event_id", "webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_state_next_attempt_time", "webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_endpoints")
