"""ListProducts: filtered, ordered pages of products, cut by keyset.

Each order ends with the product id, so it is total; a page resumes strictly after the
sort key of the last product served, so products added or removed between pages never
shift the pages (AIP-158). Statements are built once per shape of request (which
filters are set, which order, first page or not) and reused with bind parameters.
Products are served from their stored messages (see `product_wire`); the sort columns
are read beside them only for the page's cursor.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BindParameter, ColumnElement, Row, Select, and_, bindparam, or_, select

from services.auth.caller import Caller
from services.auth.roles import Role
from services.catalogue.categories import category_exists, subtree_ids
from services.catalogue.cursors import Cursor, NewestCursor, PriceCursor
from services.catalogue.product_reads import PRODUCTS
from services.catalogue.product_wire import WIRE_COLUMNS, StoredProduct, stored_products
from services.catalogue.records import PUBLISHED
from services.database import Database
from services.runtime.clock import Clock
from services.runtime.errors import PermissionDenied, Unauthenticated

__all__ = ["ProductFilter", "ProductListing", "ProductOrder", "ProductPage", "check_may_list"]

_P = PRODUCTS.c
# The stored message and stock of each product, and every column a cursor is made of.
_PAGE_COLUMNS = (*WIRE_COLUMNS, _P.create_time, _P.price_currency, _P.price_minor)


class ProductOrder(enum.Enum):
    """The orders ListProducts offers."""

    NEWEST = "newest"
    PRICE_ASCENDING = "price_ascending"
    PRICE_DESCENDING = "price_descending"


@dataclass(frozen=True, slots=True)
class ProductFilter:
    """What ListProducts should return; every set filter must match."""

    category_id: str | None = None
    merchant_id: str | None = None
    currency: str | None = None
    """The currency of the price bounds; set whenever either bound is."""
    min_price_minor: int | None = None
    max_price_minor: int | None = None
    statuses: tuple[str, ...] = (PUBLISHED,)
    """Sorted, without duplicates."""
    order: ProductOrder = ProductOrder.NEWEST


@dataclass(frozen=True, slots=True)
class ProductPage:
    """One page of products and, unless it is the last, the cursor of its last product."""

    products: list[StoredProduct]
    next_cursor: Cursor | None


def _cursor_of(row: Row[Any], order: ProductOrder) -> Cursor:
    """The keyset cursor of the product in `row` (of a listing statement) in `order`."""
    if order is ProductOrder.NEWEST:
        return NewestCursor(row.create_time, row.product_id)
    return PriceCursor(row.price_currency, row.price_minor, row.product_id)


class ProductListing:
    """Pages of products for ListProducts."""

    def __init__(self, database: Database, clock: Clock) -> None:
        self._database = database
        self._clock = clock
        self._statements: dict[tuple[object, ...], Select[Any]] = {}

    async def page(
        self,
        caller: Caller | None,
        products: ProductFilter,
        page_size: int,
        after: Cursor | None,
    ) -> ProductPage:
        """Up to `page_size` products after `after` (None for the first page)."""
        check_may_list(caller, products)
        if products.category_id is not None:
            await category_exists(self._database, products.category_id)
        now = self._clock.now()
        parameters: dict[str, Any] = {
            "now": now,
            **{f"listed_status_{index}": status for index, status in enumerate(products.statuses)},
            "category_id": products.category_id,
            "merchant_id": products.merchant_id,
            "currency": products.currency,
            "min_price": products.min_price_minor,
            "max_price": products.max_price_minor,
            "limit": page_size + 1,
        }
        if after is not None:
            parameters.update(after.parameters())
        rows = await self._database.scan(self._statement(products, after is not None), parameters)
        page = rows[:page_size]
        served = await stored_products(self._database, page, now)
        more = len(rows) > page_size
        return ProductPage(
            [product for product in served if product is not None],
            _cursor_of(page[-1], products.order) if more else None,
        )

    def _statement(self, products: ProductFilter, resumes: bool) -> Select[Any]:
        shape = (
            len(products.statuses),
            products.category_id is not None,
            products.merchant_id is not None,
            products.currency is not None,
            products.min_price_minor is not None,
            products.max_price_minor is not None,
            products.order,
            resumes,
        )
        statement = self._statements.get(shape)
        if statement is None:
            statement = self._statements[shape] = _build(products, resumes)
        return statement


def _build(products: ProductFilter, resumes: bool) -> Select[Any]:
    # A bind parameter per status, not one expanding IN: a statement without expanding
    # parameters compiles once and runs straight on the driver (see `Database.scan`),
    # and there are only a few statuses, so only a few shapes.
    statuses: list[BindParameter[str]] = [
        bindparam(f"listed_status_{index}") for index in range(len(products.statuses))
    ]
    conditions: list[ColumnElement[bool]] = [_P.status.in_(statuses)]
    if products.category_id is not None:
        conditions.append(_P.category_id.in_(subtree_ids()))
    if products.merchant_id is not None:
        conditions.append(_P.merchant_id == bindparam("merchant_id"))
    if products.currency is not None:
        conditions.append(_P.price_currency == bindparam("currency"))
    if products.min_price_minor is not None:
        conditions.append(_P.price_minor >= bindparam("min_price"))
    if products.max_price_minor is not None:
        conditions.append(_P.price_minor <= bindparam("max_price"))
    if resumes:
        conditions.append(_after(products.order))
    return (
        select(*_PAGE_COLUMNS)
        .where(*conditions)
        .order_by(*_ordering(products.order))
        .limit(bindparam("limit"))
    )


def _ordering(order: ProductOrder) -> Sequence[ColumnElement[Any]]:
    if order is ProductOrder.NEWEST:
        return (_P.create_time.desc(), _P.product_id.desc())
    if order is ProductOrder.PRICE_ASCENDING:
        return (_P.price_currency.asc(), _P.price_minor.asc(), _P.product_id.asc())
    return (_P.price_currency.asc(), _P.price_minor.desc(), _P.product_id.desc())


def _after(order: ProductOrder) -> ColumnElement[bool]:
    """Strictly after the cursor's product in `order` (see `Cursor.parameters`)."""
    product_id: BindParameter[str] = bindparam("after_product_id")
    if order is ProductOrder.NEWEST:
        create_time = bindparam("after_create_time", type_=_P.create_time.type)
        return or_(
            _P.create_time < create_time,
            and_(_P.create_time == create_time, _P.product_id < product_id),
        )
    currency: BindParameter[str] = bindparam("after_currency")
    amount: BindParameter[int] = bindparam("after_price")
    later_amount = _P.price_minor > amount
    later_id = _P.product_id > product_id
    if order is ProductOrder.PRICE_DESCENDING:
        later_amount, later_id = _P.price_minor < amount, _P.product_id < product_id
    return or_(
        _P.price_currency > currency,
        and_(_P.price_currency == currency, later_amount),
        and_(_P.price_currency == currency, _P.price_minor == amount, later_id),
    )


def check_may_list(caller: Caller | None, products: ProductFilter) -> None:
    """Drafts and archived products are listed only to their merchant and admins."""
    if set(products.statuses) <= {PUBLISHED}:
        return
    if caller is None:
        raise Unauthenticated(
            "UNAUTHENTICATED", "listing draft or archived products requires a bearer token"
        )
    if caller.has_role(Role.ADMIN) or (
        products.merchant_id is not None and products.merchant_id == caller.user_id
    ):
        return
    raise PermissionDenied(
        "PERMISSION_DENIED",
        "only admins, or merchants listing their own products, may list drafts or archived",
    )
