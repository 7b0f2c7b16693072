"""The double-entry ledger, holds and idempotency keys.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from services.database.schema import UtcDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_Sequence = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("method", sa.String(100), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("response", sa.LargeBinary(), nullable=False),
        sa.Column("create_time", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "request_id", name=op.f("pk_idempotency_keys")),
    )
    op.create_table(
        "accounts",
        sa.Column("owner", sa.String(36), nullable=False),
        sa.Column("currency_code", sa.String(3), nullable=False),
        sa.Column("system", sa.Boolean(), nullable=False),
        sa.Column("posted_minor", sa.BigInteger(), nullable=False),
        sa.Column("held_minor", sa.BigInteger(), nullable=False),
        sa.Column("create_time", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("owner", "currency_code", name=op.f("pk_accounts")),
        sa.CheckConstraint("held_minor >= 0", name=op.f("ck_accounts_held_not_negative")),
        sa.CheckConstraint(
            "system OR posted_minor >= held_minor", name=op.f("ck_accounts_never_overdrawn")
        ),
    )
    op.create_table(
        "ledger_transactions",
        sa.Column("seq", _Sequence, autoincrement=True, nullable=False),
        sa.Column("transaction_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("currency_code", sa.String(3), nullable=False),
        sa.Column("description", sa.String(200), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("hold_id", sa.String(36), nullable=True),
        sa.Column("create_time", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_ledger_transactions")),
        sa.UniqueConstraint("transaction_id", name=op.f("uq_ledger_transactions_transaction_id")),
    )
    op.create_table(
        "postings",
        sa.Column("seq", _Sequence, nullable=False),
        sa.Column("leg", sa.SmallInteger(), nullable=False),
        sa.Column("owner", sa.String(36), nullable=False),
        sa.Column("currency_code", sa.String(3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("seq", "leg", name=op.f("pk_postings")),
        sa.ForeignKeyConstraint(
            ["seq"], ["ledger_transactions.seq"], name=op.f("fk_postings_seq_ledger_transactions")
        ),
        sa.ForeignKeyConstraint(
            ["owner", "currency_code"],
            ["accounts.owner", "accounts.currency_code"],
            name=op.f("fk_postings_owner_accounts"),
        ),
        sa.CheckConstraint("amount_minor <> 0", name=op.f("ck_postings_amount_not_zero")),
    )
    op.create_index("ix_postings_owner_seq", "postings", ["owner", "seq"])
    op.create_index("ix_postings_owner_currency_seq", "postings", ["owner", "currency_code", "seq"])
    op.create_table(
        "holds",
        sa.Column("hold_id", sa.String(36), nullable=False),
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("currency_code", sa.String(3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("description", sa.String(200), nullable=False),
        sa.Column("create_time", UtcDateTime(), nullable=False),
        sa.Column("expire_time", UtcDateTime(), nullable=False),
        sa.Column("resolve_time", UtcDateTime(), nullable=True),
        sa.Column("to_user_id", sa.String(36), nullable=True),
        sa.Column("captured_minor", sa.BigInteger(), nullable=True),
        sa.Column("capture_transaction_id", sa.String(36), nullable=True),
        sa.PrimaryKeyConstraint("hold_id", name=op.f("pk_holds")),
        sa.ForeignKeyConstraint(
            ["user_id", "currency_code"],
            ["accounts.owner", "accounts.currency_code"],
            name=op.f("fk_holds_user_id_accounts"),
        ),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_holds_amount_positive")),
    )
    op.create_index("ix_holds_status_expire_time", "holds", ["status", "expire_time"])
    op.create_index(
        "ix_holds_user_id_status_expire_time", "holds", ["user_id", "status", "expire_time"]
    )


def downgrade() -> None:
    op.drop_table("holds")
    op.drop_table("postings")
    op.drop_table("ledger_transactions")
    op.drop_table("accounts")
    op.drop_table("idempotency_keys")
