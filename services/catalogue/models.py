"""Catalogue's tables.

The full-text index is not declared here: it differs per backend (an FTS5 table kept in
sync by triggers on SQLite, a generated `tsvector` column with a GIN index on PostgreSQL),
so migration 0003 creates it and `SEARCH_INDEX_NAMES` tells schema comparisons to skip it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.database.idempotency import idempotency_table
from services.database.schema import UtcDateTime, declare_unmanaged, new_metadata
from services.database.service_secrets import service_secrets_table
from services.eventbus.schema import EventTables, event_tables

__all__ = [
    "EVENT_TABLES",
    "IDEMPOTENCY_KEYS",
    "SEARCH_INDEX_NAMES",
    "SERVICE_SECRETS",
    "Base",
    "Category",
    "Product",
    "Reservation",
    "StockAdjustment",
]


class Base(DeclarativeBase):
    """Declarative base of catalogue's own tables."""

    metadata = new_metadata()


EVENT_TABLES: EventTables = event_tables(Base.metadata)
"""The event bus's outbox and inbox, in this service's own database."""

IDEMPOTENCY_KEYS = idempotency_table(Base.metadata)
"""Responses of mutations by (caller and RPC, request_id), for AIP-155 replays."""

SERVICE_SECRETS = service_secrets_table(Base.metadata)
"""Secrets every replica shares: the key of the page tokens."""

SEARCH_INDEX_NAMES = frozenset(
    {
        # SQLite: the FTS5 table, its shadow tables and the rowid map the triggers keep.
        "product_search",
        "product_search_config",
        "product_search_content",
        "product_search_data",
        "product_search_docsize",
        "product_search_idx",
        "product_search_rows",
        # PostgreSQL: the generated document column and its GIN index.
        "search_document",
        "ix_products_search_document",
    }
)
declare_unmanaged(Base.metadata, SEARCH_INDEX_NAMES)


class Category(Base):
    """A node of the category tree; ids are UUIDv7, so id order is creation order."""

    __tablename__ = "categories"
    __table_args__ = (
        UniqueConstraint("parent_category_id", "name_key"),
        # NULL parents are distinct to a unique constraint, so roots need their own index.
        Index(
            "ix_categories_root_name_key",
            "name_key",
            unique=True,
            sqlite_where=text("parent_category_id IS NULL"),
            postgresql_where=text("parent_category_id IS NULL"),
        ),
    )

    category_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    # Lower-cased name: names are unique among siblings regardless of case.
    name_key: Mapped[str] = mapped_column(String(100))
    parent_category_id: Mapped[str | None] = mapped_column(
        ForeignKey("categories.category_id"), index=True
    )
    create_time: Mapped[datetime] = mapped_column(UtcDateTime())
    # PUBLISHED products directly in this category, kept by triggers on products
    # (migration 0003), so counting a subtree walks categories, not products.
    published_products: Mapped[int] = mapped_column(BigInteger(), default=0, server_default="0")


class Product(Base):
    """A merchant's product with its stock counters.

    `reserved` counts the units of every PENDING reservation, including ones whose
    expire_time has passed but which the sweeper has not recorded as EXPIRED yet; reads
    subtract those, so callers only ever see unexpired holds.
    """

    __tablename__ = "products"
    __table_args__ = (
        # Category filters (with the newest-first order) and the category counts.
        Index("ix_products_category_listing", "category_id", "status", "create_time", "product_id"),
        Index("ix_products_status_newest", "status", "create_time", "product_id"),
        Index("ix_products_status_price", "status", "price_currency", "price_minor", "product_id"),
    )

    product_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(String(36), index=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text())
    price_currency: Mapped[str] = mapped_column(String(3))
    price_minor: Mapped[int] = mapped_column(BigInteger())
    category_id: Mapped[str | None] = mapped_column(ForeignKey("categories.category_id"))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON())
    image_urls: Mapped[list[str]] = mapped_column(JSON())
    status: Mapped[str] = mapped_column(String(16))
    stocked: Mapped[int] = mapped_column(BigInteger())
    reserved: Mapped[int] = mapped_column(BigInteger())
    create_time: Mapped[datetime] = mapped_column(UtcDateTime())
    update_time: Mapped[datetime] = mapped_column(UtcDateTime())
    publish_time: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # The Product message without stock, serialized (see `product_wire`).
    wire_form: Mapped[bytes | None] = mapped_column(LargeBinary())


class Reservation(Base):
    """A time-limited hold of units of one product for one user."""

    __tablename__ = "reservations"
    __table_args__ = (
        # Pending holds of one product that have expired: subtracted on every stock read.
        Index("ix_reservations_product_pending", "product_id", "status", "expire_time"),
        # The sweeper's scan for expired pending holds.
        Index("ix_reservations_status_expire", "status", "expire_time"),
    )

    reservation_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    product_id: Mapped[str] = mapped_column(ForeignKey("products.product_id"))
    user_id: Mapped[str] = mapped_column(String(36))
    quantity: Mapped[int] = mapped_column(Integer())
    status: Mapped[str] = mapped_column(String(16))
    expire_time: Mapped[datetime] = mapped_column(UtcDateTime())
    create_time: Mapped[datetime] = mapped_column(UtcDateTime())
    resolve_time: Mapped[datetime | None] = mapped_column(UtcDateTime())


class StockAdjustment(Base):
    """One AdjustStock change, kept for audit: who changed the stock, by how much and why."""

    __tablename__ = "stock_adjustments"

    adjustment_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    product_id: Mapped[str] = mapped_column(ForeignKey("products.product_id"), index=True)
    actor_id: Mapped[str] = mapped_column(String(36))
    delta: Mapped[int] = mapped_column(BigInteger())
    reason: Mapped[str] = mapped_column(String(500))
    stocked_after: Mapped[int] = mapped_column(BigInteger())
    create_time: Mapped[datetime] = mapped_column(UtcDateTime())
