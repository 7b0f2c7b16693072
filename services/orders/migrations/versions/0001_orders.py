"""Orders, their steps, and the event tables.

Revision ID: 0001
Revises:
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from services.database.schema import UtcDateTime
from services.eventbus.migrations import create_event_tables_v1, drop_event_tables_v1

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("order_id", sa.String(36), nullable=False),
        sa.Column("buyer_id", sa.String(36), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("merchant_id", sa.String(36), nullable=False),
        sa.Column("product_id", sa.String(36), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("currency_code", sa.String(3), nullable=False),
        sa.Column("unit_price_minor", sa.BigInteger(), nullable=False),
        sa.Column("total_minor", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("next_step", sa.String(16), nullable=False),
        sa.Column("attempt", sa.SmallInteger(), nullable=False),
        sa.Column("collections", sa.SmallInteger(), nullable=False),
        sa.Column("reached", sa.String(16), nullable=False),
        sa.Column("failure_reason", sa.String(64), nullable=False),
        sa.Column("failure_step", sa.String(16), nullable=False),
        sa.Column("reservation_id", sa.String(36), nullable=True),
        sa.Column("hold_id", sa.String(36), nullable=True),
        sa.Column("transaction_id", sa.String(36), nullable=True),
        sa.Column("lease_owner", sa.String(36), nullable=True),
        sa.Column("lease_expire_time", UtcDateTime(), nullable=True),
        sa.Column("retry_time", UtcDateTime(), nullable=False),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.Column("create_time", UtcDateTime(), nullable=False),
        sa.Column("update_time", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_orders")),
        sa.UniqueConstraint("buyer_id", "request_id", name=op.f("uq_orders_buyer_id")),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_orders_quantity_positive")),
        sa.CheckConstraint("total_minor > 0", name=op.f("ck_orders_total_positive")),
    )
    op.create_index("ix_orders_buyer_id_order_id", "orders", ["buyer_id", "order_id"])
    op.create_index("ix_orders_merchant_id_order_id", "orders", ["merchant_id", "order_id"])
    op.create_index("ix_orders_status_retry_time", "orders", ["status", "retry_time"])
    op.create_table(
        "order_steps",
        sa.Column("order_id", sa.String(36), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.SmallInteger(), nullable=False),
        sa.Column("name", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("time", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.order_id"], name=op.f("fk_order_steps_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("order_id", "seq", name=op.f("pk_order_steps")),
    )
    create_event_tables_v1()


def downgrade() -> None:
    drop_event_tables_v1()
    op.drop_table("order_steps")
    op.drop_index("ix_orders_status_retry_time", table_name="orders")
    op.drop_index("ix_orders_merchant_id_order_id", table_name="orders")
    op.drop_index("ix_orders_buyer_id_order_id", table_name="orders")
    op.drop_table("orders")
