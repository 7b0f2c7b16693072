"""What the catalogue's domain hands around: products, stock and reservations as values."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = [
    "ARCHIVED",
    "COMMITTED",
    "DRAFT",
    "EXPIRED",
    "MUTABLE_PATHS",
    "PENDING",
    "PUBLISHED",
    "RELEASED",
    "ProductFields",
    "ProductRecord",
    "ReservationRecord",
    "Stock",
]

# Product statuses, as stored.
DRAFT, PUBLISHED, ARCHIVED = "DRAFT", "PUBLISHED", "ARCHIVED"
# Reservation statuses, as stored.
PENDING, COMMITTED, RELEASED, EXPIRED = "PENDING", "COMMITTED", "RELEASED", "EXPIRED"

MUTABLE_PATHS = ("title", "description", "price", "category_id", "attributes", "image_urls")
"""The product fields a merchant sets, in the order events list changed paths."""


@dataclass(frozen=True, slots=True)
class ProductFields:
    """What a merchant says about a product: every field they may set."""

    title: str
    description: str
    price_currency: str
    price_minor: int
    category_id: str | None
    attributes: dict[str, str]
    image_urls: list[str]

    def value_of(self, path: str) -> object:
        """The value behind one of `MUTABLE_PATHS` (`price` is currency and amount)."""
        if path == "price":
            return (self.price_currency, self.price_minor)
        return getattr(self, path)

    def columns_of(self, path: str) -> dict[str, Any]:
        """The product columns that store `path`, with this value."""
        if path == "price":
            return {"price_currency": self.price_currency, "price_minor": self.price_minor}
        return {path: getattr(self, path)}


@dataclass(frozen=True, slots=True)
class Stock:
    """Units on hand and units held by pending, unexpired reservations."""

    stocked: int
    reserved: int

    @property
    def available(self) -> int:
        """Units that can still be reserved; never negative."""
        return max(0, self.stocked - self.reserved)


@dataclass(frozen=True, slots=True)
class ProductRecord:
    """A product as stored, with its stock as of the read."""

    product_id: str
    merchant_id: str
    title: str
    description: str
    price_currency: str
    price_minor: int
    category_id: str | None
    attributes: dict[str, str]
    image_urls: list[str]
    status: str
    stocked: int
    reserved: int
    create_time: datetime
    update_time: datetime
    publish_time: datetime | None

    @property
    def stock(self) -> Stock:
        """The stock summary."""
        return Stock(self.stocked, self.reserved)

    @property
    def fields(self) -> ProductFields:
        """The merchant-set fields."""
        return ProductFields(
            title=self.title,
            description=self.description,
            price_currency=self.price_currency,
            price_minor=self.price_minor,
            category_id=self.category_id,
            attributes=self.attributes,
            image_urls=self.image_urls,
        )

    def with_changes(self, **changes: Any) -> ProductRecord:
        """A copy with some columns replaced."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, slots=True)
class ReservationRecord:
    """A reservation as stored; `as_of` tells what it is at a given instant."""

    reservation_id: str
    product_id: str
    user_id: str
    quantity: int
    status: str
    expire_time: datetime
    create_time: datetime
    resolve_time: datetime | None

    def as_of(self, now: datetime) -> ReservationRecord:
        """The reservation at `now`: a PENDING one past its expire_time is EXPIRED then,
        whether or not the sweeper has recorded it yet."""
        if self.status == PENDING and self.expire_time <= now:
            return dataclasses.replace(self, status=EXPIRED, resolve_time=self.expire_time)
        return self
