"""wallets.first_top_up_time: when the user first topped up, for the sign-up funnel.

Set by the user's first top-up, in its transaction, by an UPDATE that only changes a
wallet without one: that UPDATE deciding is what makes `first_top_up` count each user
once, across replicas and retries. Wallets that had top-ups before this revision get
the time of their first, so their next top-up is not taken for a first one.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-20
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from services.database.schema import UtcDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("wallets", sa.Column("first_top_up_time", UtcDateTime(), nullable=True))
    op.execute(
        """
        UPDATE wallets SET first_top_up_time = (
            SELECT MIN(t.create_time)
            FROM ledger_transactions t JOIN postings p ON p.seq = t.seq
            WHERE t.kind = 'credit' AND p.owner = wallets.user_id AND p.amount_minor > 0
        )
        """
    )


def downgrade() -> None:
    with op.batch_alter_table("wallets") as batch:
        batch.drop_column("first_top_up_time")
