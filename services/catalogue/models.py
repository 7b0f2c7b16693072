"""Catalogue's tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.database.schema import UtcDateTime, new_metadata
from services.eventbus.schema import EventTables, event_tables

__all__ = ["EVENT_TABLES", "Base", "Category", "Product"]


class Base(DeclarativeBase):
    """Declarative base of catalogue's own tables."""

    metadata = new_metadata()


EVENT_TABLES: EventTables = event_tables(Base.metadata)
"""The event bus's outbox and inbox, in this service's own database."""


class Category(Base):
    """A node of the category tree; ids are UUIDv7, so id order is creation order."""

    __tablename__ = "categories"
    __table_args__ = (UniqueConstraint("parent_category_id", "name_key"),)

    category_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    # Lower-cased name: names are unique among siblings regardless of case.
    name_key: Mapped[str] = mapped_column(String(100))
    parent_category_id: Mapped[str | None] = mapped_column(
        ForeignKey("categories.category_id"), index=True
    )
    create_time: Mapped[datetime] = mapped_column(UtcDateTime())


class Product(Base):
    """A merchant's product with its stock counters."""

    __tablename__ = "products"
    __table_args__ = (Index("ix_products_category_status", "category_id", "status"),)

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
