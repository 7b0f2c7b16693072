"""Each product's Product message, serialized, beside its columns (`product_wire`).

GetProduct merges the stored bytes with the stock of the moment instead of building the
message from fifteen columns. The column is filled here for every existing product, and
the service writes it with every later change.

A writer that changes the columns without it (an older release during a rolling
upgrade, a hand-written fix) would leave the bytes stale, so a trigger clears them
whenever a column they carry changes and they do not: such a row is read from its
columns until the service next writes it.

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

wire_schema = "b994383b03293a61"
"""`product_wire.wire_schema()` of the messages this revision stored (see that module)."""

# Every column the stored message is built from (stock is not part of it).
_CARRIED = (
    "merchant_id",
    "title",
    "description",
    "price_currency",
    "price_minor",
    "category_id",
    "attributes",
    "image_urls",
    "status",
    "create_time",
    "update_time",
    "publish_time",
)

_JSON = ("attributes", "image_urls")

# Built from the constant column list above, never from input.
_SQLITE_TRIGGER = f"""
CREATE TRIGGER products_wire_form_stale AFTER UPDATE OF {", ".join(_CARRIED)} ON products
WHEN new.wire_form IS old.wire_form
BEGIN
    UPDATE products SET wire_form = NULL WHERE product_id = new.product_id;
END
"""  # noqa: S608


def _row(alias: str) -> str:
    # `json` has no equality operator on PostgreSQL; its text does.
    return ", ".join(
        f"{alias}.{column}::text" if column in _JSON else f"{alias}.{column}" for column in _CARRIED
    )


def _postgresql_function() -> str:
    return f"""
CREATE FUNCTION products_wire_form_stale() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.wire_form IS NOT DISTINCT FROM OLD.wire_form
       AND ROW({_row("NEW")}) IS DISTINCT FROM ROW({_row("OLD")}) THEN
        NEW.wire_form := NULL;
    END IF;
    RETURN NEW;
END
$$
"""


def upgrade() -> None:
    op.add_column("products", sa.Column("wire_form", sa.LargeBinary(), nullable=True))
    rebuild_wire_forms(op.get_bind())
    if _sqlite():
        op.execute(_SQLITE_TRIGGER)
        return
    op.execute(_postgresql_function())
    op.execute(
        "CREATE TRIGGER products_wire_form_stale BEFORE UPDATE ON products "
        "FOR EACH ROW EXECUTE FUNCTION products_wire_form_stale()"
    )


def downgrade() -> None:
    if _sqlite():
        op.execute("DROP TRIGGER products_wire_form_stale")
    else:
        op.execute("DROP TRIGGER products_wire_form_stale ON products")
        op.execute("DROP FUNCTION products_wire_form_stale()")
    op.drop_column("products", "wire_form")


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"
