"""Each product's Product message, serialized, beside its columns (`product_wire`).

GetProduct merges the stored bytes with the stock of the moment instead of building the
message from fifteen columns. The column is filled here for every existing product;
the service writes it with every later change.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from services.catalogue.product_wire import rebuild_wire_forms

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("products", sa.Column("wire_form", sa.LargeBinary(), nullable=True))
    rebuild_wire_forms(op.get_bind())


def downgrade() -> None:
    op.drop_column("products", "wire_form")
