"""Products: creation, changes and the DRAFT -> PUBLISHED -> ARCHIVED lifecycle.

Every change is written with its event in one transaction (the caller's session, opened
by the idempotent-write wrapper), and every change first locks the product row, so
concurrent changes apply in commit order on PostgreSQL as SQLite's single writer does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from superapp.catalogue.v1 import catalogue_service_pb2 as pb
from superapp.catalogue.v1 import events_pb2

from services.auth.caller import Caller
from services.catalogue.access import (
    check_may_change_product,
    check_may_see_product,
    product_not_found,
)
from services.catalogue.categories import require_category
from services.catalogue.messages import fill_product, product_message, product_status
from services.catalogue.product_reads import PRODUCTS, RESERVED_NOW, product_select, record_of
from services.catalogue.product_wire import fill_from_wire, wire_form
from services.catalogue.records import (
    ARCHIVED,
    DRAFT,
    MUTABLE_PATHS,
    PUBLISHED,
    ProductFields,
    ProductRecord,
    Stock,
)
from services.database import Database
from services.eventbus import Outbox
from services.runtime.clock import Clock
from services.runtime.errors import FailedPrecondition
from services.runtime.ids import new_id
from services.runtime.proto_time import to_timestamp

__all__ = ["Products"]

_P = PRODUCTS.c
_BY_ID = product_select().where(_P.product_id == bindparam("product_id"))
_LOCKED_BY_ID = _BY_ID.with_for_update(of=PRODUCTS)
# What a read needs beside the stored message: who may see it, and the stock.
_WIRE_BY_ID = select(_P.wire_form, _P.merchant_id, _P.status, _P.stocked, RESERVED_NOW).where(
    _P.product_id == bindparam("product_id")
)


class Products:
    """Business rules of products; every state change announces itself through the outbox."""

    def __init__(self, database: Database, outbox: Outbox, clock: Clock) -> None:
        self._database = database
        self._outbox = outbox
        self._clock = clock

    async def create(
        self, session: AsyncSession, caller: Caller, fields: ProductFields
    ) -> ProductRecord:
        """A new DRAFT product of `caller`, with no stock."""
        if fields.category_id is not None:
            await require_category(session, fields.category_id)
        now = self._clock.now()
        product = ProductRecord(
            product_id=new_id(),
            merchant_id=caller.user_id,
            title=fields.title,
            description=fields.description,
            price_currency=fields.price_currency,
            price_minor=fields.price_minor,
            category_id=fields.category_id,
            attributes=fields.attributes,
            image_urls=fields.image_urls,
            status=DRAFT,
            stocked=0,
            reserved=0,
            create_time=now,
            update_time=now,
            publish_time=None,
        )
        await session.execute(PRODUCTS.insert().values(**_columns(product)))
        return product

    async def get(self, caller: Caller | None, product_id: str, into: pb.Product) -> None:
        """Fill the empty `into` with the product if `caller` may see it; NOT_FOUND
        `PRODUCT_NOT_FOUND` otherwise."""
        parameters = {"product_id": product_id, "now": self._clock.now()}
        rows = await self._database.lookup(_WIRE_BY_ID, parameters)
        if not rows:
            raise product_not_found(product_id)
        found = rows[0]
        check_may_see_product(caller, product_id, found.merchant_id, found.status)
        if found.wire_form is not None:
            fill_from_wire(into, found.wire_form, Stock(found.stocked, found.reserved))
            return
        # A row some other writer left without its wire form: the columns answer.
        [row] = await self._database.lookup(_BY_ID, parameters)
        fill_product(into, record_of(row))

    async def update(
        self,
        session: AsyncSession,
        caller: Caller,
        product_id: str,
        fields: ProductFields,
        paths: Sequence[str],
    ) -> ProductRecord:
        """Replace the fields named in `paths` with those of `fields`.

        Announces ProductUpdated with the paths whose values changed, if any did.
        """
        product = await self._changeable(session, caller, product_id)
        if product.status == ARCHIVED:
            raise FailedPrecondition(
                "PRODUCT_ARCHIVED",
                "an archived product can no longer be changed",
                metadata={"product_id": product_id},
            )
        if "category_id" in paths and fields.category_id is not None:
            await require_category(session, fields.category_id)
        current = product.fields
        changed = [
            path
            for path in MUTABLE_PATHS
            if path in paths and fields.value_of(path) != current.value_of(path)
        ]
        if not changed:
            return product
        now = self._clock.now()
        values: dict[str, Any] = {"update_time": now}
        for path in changed:
            values.update(fields.columns_of(path))
        updated = await self._write(session, product, values)
        event = events_pb2.ProductUpdated(
            product_id=product_id,
            changed_paths=changed,
            product=product_message(updated),
            occur_time=to_timestamp(now),
        )
        await self._outbox.record(session, event, aggregate_id=product_id)
        return updated

    async def publish(
        self, session: AsyncSession, caller: Caller, product_id: str
    ) -> ProductRecord:
        """DRAFT -> PUBLISHED; announces ProductPublished."""
        product = await self._changeable(session, caller, product_id)
        if product.status != DRAFT:
            raise FailedPrecondition(
                "INVALID_STATUS_TRANSITION",
                f"only a draft can be published; this product is {product.status.lower()}",
                metadata={
                    "product_id": product_id,
                    "current_status": _status_name(product.status),
                    "target_status": _status_name(PUBLISHED),
                },
            )
        now = self._clock.now()
        published = await self._write(
            session, product, {"status": PUBLISHED, "publish_time": now, "update_time": now}
        )
        event = events_pb2.ProductPublished(
            product_id=product_id, product=product_message(published), occur_time=to_timestamp(now)
        )
        await self._outbox.record(session, event, aggregate_id=product_id)
        return published

    async def archive(
        self, session: AsyncSession, caller: Caller, product_id: str
    ) -> ProductRecord:
        """DRAFT or PUBLISHED -> ARCHIVED; announces ProductArchived when the status changes."""
        product = await self._changeable(session, caller, product_id)
        if product.status == ARCHIVED:
            return product
        now = self._clock.now()
        archived = await self._write(session, product, {"status": ARCHIVED, "update_time": now})
        event = events_pb2.ProductArchived(
            product_id=product_id,
            previous_status=product_status(product.status),
            product=product_message(archived),
            occur_time=to_timestamp(now),
        )
        await self._outbox.record(session, event, aggregate_id=product_id)
        return archived

    async def _changeable(
        self, session: AsyncSession, caller: Caller, product_id: str
    ) -> ProductRecord:
        row = (
            await session.execute(
                _LOCKED_BY_ID, {"product_id": product_id, "now": self._clock.now()}
            )
        ).first()
        if row is None:
            raise product_not_found(product_id)
        product = record_of(row)
        check_may_change_product(caller, product_id, product.merchant_id, product.status)
        return product

    async def _write(
        self, session: AsyncSession, product: ProductRecord, values: dict[str, Any]
    ) -> ProductRecord:
        changed = product.with_changes(**values)
        await session.execute(
            PRODUCTS.update()
            .where(_P.product_id == product.product_id)
            .values(**values, wire_form=wire_form(changed))
        )
        return changed


def _columns(product: ProductRecord) -> dict[str, Any]:
    return {
        "product_id": product.product_id,
        "merchant_id": product.merchant_id,
        "title": product.title,
        "description": product.description,
        "price_currency": product.price_currency,
        "price_minor": product.price_minor,
        "category_id": product.category_id,
        "attributes": product.attributes,
        "image_urls": product.image_urls,
        "status": product.status,
        "stocked": product.stocked,
        "reserved": product.reserved,
        "create_time": product.create_time,
        "update_time": product.update_time,
        "publish_time": product.publish_time,
        "wire_form": wire_form(product),
    }


def _status_name(status: str) -> str:
    return f"PRODUCT_STATUS_{status}"
