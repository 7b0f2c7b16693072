"""The one way products are read: their columns with the stock as of a given instant.

`products.reserved` still counts pending reservations that expired but that the sweeper
has not recorded yet; every read subtracts them (an index probe on the product's pending
reservations), so callers see the stock the contract promises at that very instant.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, Select, Table, bindparam, func, select

from services.catalogue.models import Base, Product, Reservation
from services.catalogue.records import PENDING, ProductRecord
from services.database.schema import UtcDateTime

__all__ = ["PRODUCTS", "RESERVATIONS", "RESERVED_NOW", "product_select", "record_of"]


def _table(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


PRODUCTS = _table(Product)
RESERVATIONS = _table(Reservation)
_P = PRODUCTS.c
_R = RESERVATIONS.c

_EXPIRED_HOLDS = (
    select(func.coalesce(func.sum(_R.quantity), 0))
    .where(
        _R.product_id == _P.product_id,
        _R.status == PENDING,
        _R.expire_time <= bindparam("now", type_=UtcDateTime()),
    )
    .scalar_subquery()
)

RESERVED_NOW = (_P.reserved - _EXPIRED_HOLDS).label("reserved")
"""`reserved` as of the bind parameter `now`: expired pending reservations left out."""

_COLUMNS = (
    _P.product_id,
    _P.merchant_id,
    _P.title,
    _P.description,
    _P.price_currency,
    _P.price_minor,
    _P.category_id,
    _P.attributes,
    _P.image_urls,
    _P.status,
    _P.stocked,
    RESERVED_NOW,
    _P.create_time,
    _P.update_time,
    _P.publish_time,
)


def product_select() -> Select[Any]:
    """SELECT of whole products, with the bind parameter `now` for the stock."""
    return select(*_COLUMNS)


def record_of(row: Row[Any]) -> ProductRecord:
    """The record of one row of `product_select()`."""
    return ProductRecord(
        product_id=row.product_id,
        merchant_id=row.merchant_id,
        title=row.title,
        description=row.description,
        price_currency=row.price_currency,
        price_minor=row.price_minor,
        category_id=row.category_id,
        attributes=dict(row.attributes),
        image_urls=list(row.image_urls),
        status=row.status,
        stocked=row.stocked,
        reserved=row.reserved,
        create_time=row.create_time,
        update_time=row.update_time,
        publish_time=row.publish_time,
    )
