"""Sign-in throttling per (email, client address) and per client address.

The per-email block let anyone who knew an email lock its owner out; its table goes.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
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
    op.drop_table("login_throttle")
    op.create_table(
        "login_pair_failures",
        sa.Column("pair_key", sa.String(64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("blocked_until", UtcDateTime(), nullable=False),
        sa.Column("expire_time", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("pair_key", name=op.f("pk_login_pair_failures")),
    )
    op.create_index(
        op.f("ix_login_pair_failures_expire_time"), "login_pair_failures", ["expire_time"]
    )
    op.create_table(
        "login_address_failures",
        sa.Column("address_key", sa.String(64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_start", UtcDateTime(), nullable=False),
        sa.Column("blocked_until", UtcDateTime(), nullable=True),
        sa.Column("expire_time", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("address_key", name=op.f("pk_login_address_failures")),
    )
    op.create_index(
        op.f("ix_login_address_failures_expire_time"), "login_address_failures", ["expire_time"]
    )


def downgrade() -> None:
    op.drop_table("login_address_failures")
    op.drop_table("login_pair_failures")
    op.create_table(
        "login_throttle",
        sa.Column("email_key", sa.String(64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_start", UtcDateTime(), nullable=False),
        sa.Column("blocked_until", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("email_key", name=op.f("pk_login_throttle")),
    )
