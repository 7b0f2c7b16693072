"""Reservations, stock audit, idempotency keys, listing indexes and the full-text index.

The full-text index differs per backend and is kept in sync by the database itself, so
every write path (RPCs, bulk seeding, manual fixes) indexes what it writes:

- SQLite: an FTS5 table holding the searchable text of PUBLISHED products, with the
  product id, category and creation time that searches filter and sort by (so a search
  never reads `products` for the rows it does not return), maintained by triggers on
  `products`. FTS5 rows are addressed by integer rowids, and the rowids of
  `products` (a table without an INTEGER PRIMARY KEY) may change on VACUUM, so the
  triggers map product ids to stable FTS rowids through `product_search_rows`.
- PostgreSQL: a stored generated `tsvector` column (title weight A, attribute values B,
  description C) with a GIN index over PUBLISHED products.

Both split text at every character that is not a letter or digit, lower-case it and keep
diacritics, which is how SearchProducts splits a query.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from services.database.schema import UtcDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Each category's count of PUBLISHED products directly in it, kept by the database on
# every write to products, as the full-text index is.
_COUNT_BACKFILL = """
    UPDATE categories SET published_products = (
        SELECT count(*) FROM products
        WHERE products.category_id = categories.category_id AND products.status = 'PUBLISHED'
    )
"""
_SQLITE_COUNTS = [
    """
    CREATE TRIGGER products_count_insert AFTER INSERT ON products
    WHEN new.status = 'PUBLISHED' AND new.category_id IS NOT NULL
    BEGIN
        UPDATE categories SET published_products = published_products + 1
        WHERE category_id = new.category_id;
    END
    """,
    """
    CREATE TRIGGER products_count_update AFTER UPDATE OF status, category_id ON products
    BEGIN
        UPDATE categories SET published_products = published_products - 1
        WHERE category_id = old.category_id AND old.status = 'PUBLISHED';
        UPDATE categories SET published_products = published_products + 1
        WHERE category_id = new.category_id AND new.status = 'PUBLISHED';
    END
    """,
    """
    CREATE TRIGGER products_count_delete AFTER DELETE ON products
    WHEN old.status = 'PUBLISHED'
    BEGIN
        UPDATE categories SET published_products = published_products - 1
        WHERE category_id = old.category_id;
    END
    """,
]
# The two categories of a move are updated in id order: two moves in opposite directions
# between the same pair then wait for each other instead of deadlocking.
_POSTGRESQL_COUNTS = [
    """
    CREATE FUNCTION count_published_products() RETURNS trigger LANGUAGE plpgsql AS $body$
    DECLARE
        leaving varchar(36);
        arriving varchar(36);
    BEGIN
        IF TG_OP <> 'INSERT' AND OLD.status = 'PUBLISHED' THEN
            leaving := OLD.category_id;
        END IF;
        IF TG_OP <> 'DELETE' AND NEW.status = 'PUBLISHED' THEN
            arriving := NEW.category_id;
        END IF;
        IF leaving IS NOT DISTINCT FROM arriving THEN
            RETURN NULL;
        END IF;
        IF arriving IS NULL OR (leaving IS NOT NULL AND leaving < arriving) THEN
            UPDATE categories SET published_products = published_products - 1
            WHERE category_id = leaving;
            UPDATE categories SET published_products = published_products + 1
            WHERE category_id = arriving;
        ELSE
            UPDATE categories SET published_products = published_products + 1
            WHERE category_id = arriving;
            UPDATE categories SET published_products = published_products - 1
            WHERE category_id = leaving;
        END IF;
        RETURN NULL;
    END
    $body$
    """,
    """
    CREATE TRIGGER products_count
    AFTER INSERT OR DELETE OR UPDATE OF status, category_id ON products
    FOR EACH ROW EXECUTE FUNCTION count_published_products()
    """,
]

_SQLITE_SEARCH = [
    """
    CREATE TABLE product_search_rows (
        search_rowid INTEGER PRIMARY KEY,
        product_id VARCHAR(36) NOT NULL UNIQUE
    )
    """,
    """
    CREATE VIRTUAL TABLE product_search USING fts5(
        product_id UNINDEXED, category_id UNINDEXED, create_time UNINDEXED,
        title, attributes, description,
        tokenize = 'unicode61 remove_diacritics 0'
    )
    """,
    # Attribute values are indexed, their keys are not.
    """
    CREATE TRIGGER products_search_insert AFTER INSERT ON products
    WHEN new.status = 'PUBLISHED'
    BEGIN
        INSERT INTO product_search_rows (product_id) VALUES (new.product_id);
        INSERT INTO product_search
            (rowid, product_id, category_id, create_time, title, attributes, description)
        SELECT r.search_rowid, new.product_id, new.category_id, new.create_time, new.title,
               (SELECT coalesce(group_concat(value, ' '), '') FROM json_each(new.attributes)),
               new.description
        FROM product_search_rows AS r WHERE r.product_id = new.product_id;
    END
    """,
    """
    CREATE TRIGGER products_search_update
    AFTER UPDATE OF title, description, attributes, category_id, status ON products
    BEGIN
        DELETE FROM product_search WHERE rowid =
            (SELECT search_rowid FROM product_search_rows WHERE product_id = old.product_id);
        DELETE FROM product_search_rows WHERE product_id = old.product_id;
        INSERT INTO product_search_rows (product_id)
        SELECT new.product_id WHERE new.status = 'PUBLISHED';
        INSERT INTO product_search
            (rowid, product_id, category_id, create_time, title, attributes, description)
        SELECT r.search_rowid, new.product_id, new.category_id, new.create_time, new.title,
               (SELECT coalesce(group_concat(value, ' '), '') FROM json_each(new.attributes)),
               new.description
        FROM product_search_rows AS r WHERE r.product_id = new.product_id;
    END
    """,
    """
    CREATE TRIGGER products_search_delete AFTER DELETE ON products
    BEGIN
        DELETE FROM product_search WHERE rowid =
            (SELECT search_rowid FROM product_search_rows WHERE product_id = old.product_id);
        DELETE FROM product_search_rows WHERE product_id = old.product_id;
    END
    """,
    # Products published before this revision.
    """
    INSERT INTO product_search_rows (product_id)
    SELECT product_id FROM products WHERE status = 'PUBLISHED'
    """,
    """
    INSERT INTO product_search
        (rowid, product_id, category_id, create_time, title, attributes, description)
    SELECT r.search_rowid, p.product_id, p.category_id, p.create_time, p.title,
           (SELECT coalesce(group_concat(value, ' '), '') FROM json_each(p.attributes)),
           p.description
    FROM products AS p JOIN product_search_rows AS r ON r.product_id = p.product_id
    """,
]

# Punctuation becomes a space before PostgreSQL's parser sees the text, so "example.com"
# or "t-shirt" are two words, as they are to FTS5 and to the query splitter. Attribute
# values come out of JSON text, whose escapes (\", \\, \n, \u0001) are never letters.
_PG_WORDS = "regexp_replace({0}, '[^[:alnum:]]+', ' ', 'g')"
_PG_ATTRIBUTE_VALUES = _PG_WORDS.format(
    "regexp_replace(jsonb_path_query_array(attributes::jsonb, '$.*')::text,"
    " '\\\\(u[0-9a-fA-F]{4}|.)', ' ', 'g')"
)
_POSTGRESQL_SEARCH = [
    f"""
    ALTER TABLE products ADD COLUMN search_document tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('simple', {_PG_WORDS.format("title")}), 'A')
        || setweight(to_tsvector('simple', {_PG_ATTRIBUTE_VALUES}), 'B')
        || setweight(to_tsvector('simple', {_PG_WORDS.format("description")}), 'C')
    ) STORED
    """,
    """
    CREATE INDEX ix_products_search_document ON products USING gin (search_document)
    WHERE status = 'PUBLISHED'
    """,
]


def upgrade() -> None:
    op.create_table(
        "reservations",
        sa.Column("reservation_id", sa.String(36), nullable=False),
        sa.Column("product_id", sa.String(36), nullable=False),
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("expire_time", UtcDateTime(), nullable=False),
        sa.Column("create_time", UtcDateTime(), nullable=False),
        sa.Column("resolve_time", UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.product_id"],
            name=op.f("fk_reservations_product_id_products"),
        ),
        sa.PrimaryKeyConstraint("reservation_id", name=op.f("pk_reservations")),
    )
    op.create_index(
        "ix_reservations_product_pending", "reservations", ["product_id", "status", "expire_time"]
    )
    op.create_index("ix_reservations_status_expire", "reservations", ["status", "expire_time"])
    op.create_table(
        "stock_adjustments",
        sa.Column("adjustment_id", sa.String(36), nullable=False),
        sa.Column("product_id", sa.String(36), nullable=False),
        sa.Column("actor_id", sa.String(36), nullable=False),
        sa.Column("delta", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("stocked_after", sa.BigInteger(), nullable=False),
        sa.Column("create_time", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.product_id"],
            name=op.f("fk_stock_adjustments_product_id_products"),
        ),
        sa.PrimaryKeyConstraint("adjustment_id", name=op.f("pk_stock_adjustments")),
    )
    op.create_index(op.f("ix_stock_adjustments_product_id"), "stock_adjustments", ["product_id"])
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
    op.drop_index("ix_products_category_status", table_name="products")
    op.create_index(
        "ix_products_category_listing",
        "products",
        ["category_id", "status", "create_time", "product_id"],
    )
    op.create_index(
        "ix_products_status_newest", "products", ["status", "create_time", "product_id"]
    )
    op.create_index(
        "ix_products_status_price",
        "products",
        ["status", "price_currency", "price_minor", "product_id"],
    )
    op.create_index(
        "ix_categories_root_name_key",
        "categories",
        ["name_key"],
        unique=True,
        sqlite_where=sa.text("parent_category_id IS NULL"),
        postgresql_where=sa.text("parent_category_id IS NULL"),
    )
    op.add_column(
        "categories",
        sa.Column("published_products", sa.BigInteger(), nullable=False, server_default="0"),
    )
    connection = op.get_bind()
    if connection.dialect.name == "sqlite":
        statements = [*_SQLITE_SEARCH, _COUNT_BACKFILL, *_SQLITE_COUNTS]
    else:
        statements = [*_POSTGRESQL_SEARCH, _COUNT_BACKFILL, *_POSTGRESQL_COUNTS]
    # Straight to the driver: `[:alnum:]` would read as a bind parameter to text().
    for statement in statements:
        connection.exec_driver_sql(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in (
            "products_search_insert",
            "products_search_update",
            "products_search_delete",
        ):
            op.execute(f"DROP TRIGGER {trigger}")
        op.execute("DROP TABLE product_search")
        op.execute("DROP TABLE product_search_rows")
    else:
        op.execute("DROP INDEX ix_products_search_document")
        op.execute("ALTER TABLE products DROP COLUMN search_document")
    op.drop_index("ix_categories_root_name_key", table_name="categories")
    op.drop_index("ix_products_status_price", table_name="products")
    op.drop_index("ix_products_status_newest", table_name="products")
    op.drop_index("ix_products_category_listing", table_name="products")
    op.create_index("ix_products_category_status", "products", ["category_id", "status"])
    op.drop_table("idempotency_keys")
    op.drop_table("stock_adjustments")
    op.drop_table("reservations")
