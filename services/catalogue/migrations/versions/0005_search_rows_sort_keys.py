"""SQLite search: the category and creation time of each indexed product beside its rowid.

A search filters its matches by category and sorts them by relevance, then creation
time and product id. Revision 0003 read those columns from the FTS5 table, where each
read loads the product's whole indexed text; `product_search_rows` holds them in a
row of a few dozen bytes. Measured at 100,000 products, a one-word search's matching
and sorting took 0.36 ms instead of 0.49 ms. The triggers keep the new columns as they
keep the rest; PostgreSQL searches `products` directly and is unchanged.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The FTS row of a product that has a `product_search_rows` row (it is published).
_INDEX_ROW = """    INSERT INTO product_search
        (rowid, product_id, category_id, create_time, title, attributes, description)
    SELECT r.search_rowid, new.product_id, new.category_id, new.create_time, new.title,
           (SELECT coalesce(group_concat(value, ' '), '') FROM json_each(new.attributes)),
           new.description
    FROM product_search_rows AS r WHERE r.product_id = new.product_id;"""
# `{row_columns}` and `{row_values}` say what else a `product_search_rows` row records.
_INSERT_TRIGGER = """
CREATE TRIGGER products_search_insert AFTER INSERT ON products
WHEN new.status = 'PUBLISHED'
BEGIN
    INSERT INTO product_search_rows (product_id{row_columns})
    VALUES (new.product_id{row_values});
{index_row}
END
"""
_UPDATE_TRIGGER = """
CREATE TRIGGER products_search_update
AFTER UPDATE OF title, description, attributes, category_id, status ON products
BEGIN
    DELETE FROM product_search WHERE rowid =
        (SELECT search_rowid FROM product_search_rows WHERE product_id = old.product_id);
    DELETE FROM product_search_rows WHERE product_id = old.product_id;
    INSERT INTO product_search_rows (product_id{row_columns})
    SELECT new.product_id{row_values} WHERE new.status = 'PUBLISHED';
{index_row}
END
"""


def _replace_triggers(row_columns: str, row_values: str) -> None:
    op.execute("DROP TRIGGER products_search_insert")
    op.execute("DROP TRIGGER products_search_update")
    for trigger in (_INSERT_TRIGGER, _UPDATE_TRIGGER):
        op.execute(
            trigger.format(row_columns=row_columns, row_values=row_values, index_row=_INDEX_ROW)
        )


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("ALTER TABLE product_search_rows ADD COLUMN category_id VARCHAR(36)")
    op.execute("ALTER TABLE product_search_rows ADD COLUMN create_time DATETIME")
    op.execute(
        """
        UPDATE product_search_rows SET (category_id, create_time) = (
            SELECT p.category_id, p.create_time FROM products AS p
            WHERE p.product_id = product_search_rows.product_id
        )
        """
    )
    _replace_triggers(", category_id, create_time", ", new.category_id, new.create_time")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    _replace_triggers("", "")
    op.execute("ALTER TABLE product_search_rows DROP COLUMN create_time")
    op.execute("ALTER TABLE product_search_rows DROP COLUMN category_id")
