"""Stock and reservations: units are reserved, then committed, released or expired.

No check-then-write anywhere. A reservation takes its units with one conditional UPDATE
(`reserved = reserved + q WHERE stocked - reserved >= q`) in the transaction that inserts
the reservation and its event, so concurrent reservations can never oversell, on SQLite's
single writer and on PostgreSQL's row locks alike.

`products.reserved` counts every PENDING reservation. One that reaches its expire_time
stops holding stock at that instant: reads subtract it at once (see `product_reads`), and
every write that depends on the counter first records the product's expired holds as
EXPIRED (`_expire_holds_of`), so the counter it then works with is exact. The sweeper
(`expire_due`) does the same for everything else, shortly after the fact, and publishes
StockReleased.

Lock order on PostgreSQL is always reservations before their product, which rules out
deadlocks between reservations, commits, releases, adjustments and the sweeper.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from superapp.catalogue.v1 import events_pb2

from services.auth.caller import Caller
from services.auth.roles import Role
from services.catalogue.access import (
    check_may_change_product,
    check_may_see_reservation,
    may_manage,
    product_not_found,
    reservation_not_found,
)
from services.catalogue.messages import stock_message
from services.catalogue.models import StockAdjustment
from services.catalogue.product_reads import PRODUCTS, RESERVATIONS, product_select, record_of
from services.catalogue.records import (
    COMMITTED,
    EXPIRED,
    PENDING,
    PUBLISHED,
    RELEASED,
    ReservationRecord,
    Stock,
)
from services.catalogue.stock_metrics import StockMetrics
from services.database import Database
from services.database.schema import UtcDateTime
from services.eventbus import Outbox
from services.runtime.clock import Clock
from services.runtime.errors import FailedPrecondition
from services.runtime.ids import new_id
from services.runtime.proto_time import to_timestamp

__all__ = ["SWEEP_BATCH", "Inventory"]

SWEEP_BATCH = 100
"""Reservations expired per sweep transaction at most."""

_P = PRODUCTS.c
_R = RESERVATIONS.c
_NOW = bindparam("now", type_=UtcDateTime())

_PRODUCT_BY_ID = product_select().where(_P.product_id == bindparam("product"))
_RESERVATION_COLUMNS = (
    _R.reservation_id,
    _R.product_id,
    _R.user_id,
    _R.quantity,
    _R.status,
    _R.expire_time,
    _R.create_time,
    _R.resolve_time,
)
_RESERVATION_BY_ID = select(*_RESERVATION_COLUMNS).where(
    _R.reservation_id == bindparam("reservation")
)
_LOCKED_RESERVATION_BY_ID = _RESERVATION_BY_ID.with_for_update()

_TAKE_UNITS = (
    PRODUCTS.update()
    .where(
        _P.product_id == bindparam("product"),
        _P.status == PUBLISHED,
        _P.stocked - _P.reserved >= bindparam("quantity"),
    )
    .values(reserved=_P.reserved + bindparam("quantity"))
    .returning(_P.merchant_id, _P.stocked, _P.reserved)
)
_RETURN_UNITS = (
    PRODUCTS.update()
    .where(_P.product_id == bindparam("product"))
    .values(reserved=_P.reserved - bindparam("quantity"))
    .returning(_P.merchant_id, _P.stocked, _P.reserved)
)
_SELL_UNITS = (
    PRODUCTS.update()
    .where(_P.product_id == bindparam("product"))
    .values(
        stocked=_P.stocked - bindparam("quantity"), reserved=_P.reserved - bindparam("quantity")
    )
    .returning(_P.merchant_id, _P.stocked, _P.reserved)
)
_ADJUST_UNITS = (
    PRODUCTS.update()
    .where(
        _P.product_id == bindparam("product"),
        _P.stocked + bindparam("delta") >= _P.reserved,
    )
    .values(stocked=_P.stocked + bindparam("delta"))
    .returning(_P.merchant_id, _P.stocked, _P.reserved)
)
_COUNTERS = select(_P.stocked, _P.reserved).where(_P.product_id == bindparam("product"))

# Expired holds of one product, taken over by the write that found them.
_EXPIRE_HOLDS_OF = (
    RESERVATIONS.update()
    .where(
        _R.product_id == bindparam("product"),
        _R.status == PENDING,
        _R.expire_time <= _NOW,
    )
    .values(status=EXPIRED, resolve_time=_R.expire_time)
    .returning(_R.reservation_id, _R.user_id, _R.quantity, _R.expire_time)
)
# The sweeper's batch. Another process's sweeper skips the rows this one holds.
_DUE_HOLDS = (
    select(_R.reservation_id, _R.product_id, _R.user_id, _R.quantity, _R.expire_time)
    .where(_R.status == PENDING, _R.expire_time <= _NOW)
    .order_by(_R.expire_time, _R.reservation_id)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)
_EXPIRE_HOLDS = (
    RESERVATIONS.update()
    .where(_R.reservation_id.in_(bindparam("reservation_ids", expanding=True)))
    .values(status=EXPIRED, resolve_time=_R.expire_time)
)


class Inventory:
    """Business rules of stock; every change announces itself through the outbox."""

    def __init__(
        self, database: Database, outbox: Outbox, clock: Clock, metrics: StockMetrics
    ) -> None:
        self._database = database
        self._outbox = outbox
        self._clock = clock
        self._metrics = metrics

    async def reserve(
        self,
        session: AsyncSession,
        caller: Caller,
        product_id: str,
        quantity: int,
        ttl: timedelta,
        *,
        for_user: str = "",
    ) -> ReservationRecord:
        """Hold `quantity` units of a PUBLISHED product for `caller` (or, for a system or
        admin caller, `for_user`) for `ttl`.

        Announces StockReserved, and ProductOutOfStock when nothing is left available.
        """
        owner = for_user or caller.user_id
        caller.check_may_act_for(owner, system=True)
        now = self._clock.now()
        await self._expire_holds_of(session, product_id, now)
        taken = (
            await session.execute(_TAKE_UNITS, {"product": product_id, "quantity": quantity})
        ).first()
        if taken is None:
            refusal = await self._refusal(session, caller, product_id, quantity)
            if isinstance(refusal, FailedPrecondition) and refusal.reason == "OUT_OF_STOCK":
                self._metrics.out_of_stock()
            raise refusal
        reservation = ReservationRecord(
            reservation_id=new_id(),
            product_id=product_id,
            user_id=owner,
            quantity=quantity,
            status=PENDING,
            expire_time=now + ttl,
            create_time=now,
            resolve_time=None,
        )
        await session.execute(RESERVATIONS.insert().values(**_columns(reservation)))
        stock = Stock(taken.stocked, taken.reserved)
        await self._outbox.record(
            session,
            events_pb2.StockReserved(
                reservation_id=reservation.reservation_id,
                product_id=product_id,
                merchant_id=taken.merchant_id,
                user_id=owner,
                quantity=quantity,
                expire_time=to_timestamp(reservation.expire_time),
                stock=stock_message(stock),
                occur_time=to_timestamp(now),
            ),
            aggregate_id=product_id,
        )
        self._metrics.reserved(session)
        if stock.available == 0:
            await self._out_of_stock(session, product_id, taken.merchant_id, stock, now)
        return reservation

    async def commit(
        self, session: AsyncSession, caller: Caller, reservation_id: str
    ) -> ReservationRecord:
        """Sell the units of a PENDING reservation; announces StockCommitted."""
        now = self._clock.now()
        reservation = await self._pending(session, caller, reservation_id, now)
        committed = await self._resolve(session, reservation, COMMITTED, now)
        sold = (
            await session.execute(
                _SELL_UNITS,
                {"product": reservation.product_id, "quantity": reservation.quantity},
            )
        ).one()
        await self._outbox.record(
            session,
            events_pb2.StockCommitted(
                reservation_id=reservation_id,
                product_id=reservation.product_id,
                merchant_id=sold.merchant_id,
                user_id=reservation.user_id,
                quantity=reservation.quantity,
                stock=stock_message(Stock(sold.stocked, sold.reserved)),
                occur_time=to_timestamp(now),
            ),
            aggregate_id=reservation.product_id,
        )
        return committed

    async def release(
        self, session: AsyncSession, caller: Caller, reservation_id: str
    ) -> ReservationRecord:
        """Return the units of a PENDING reservation; announces StockReleased."""
        now = self._clock.now()
        reservation = await self._pending(session, caller, reservation_id, now)
        released = await self._resolve(session, reservation, RELEASED, now)
        returned = (
            await session.execute(
                _RETURN_UNITS,
                {"product": reservation.product_id, "quantity": reservation.quantity},
            )
        ).one()
        await self._outbox.record(
            session,
            _released_event(
                reservation.reservation_id,
                reservation.product_id,
                returned.merchant_id,
                reservation.user_id,
                reservation.quantity,
                events_pb2.STOCK_RELEASE_REASON_RELEASED,
                Stock(returned.stocked, returned.reserved),
                now,
            ),
            aggregate_id=reservation.product_id,
        )
        return released

    async def get_reservation(self, caller: Caller, reservation_id: str) -> ReservationRecord:
        """The reservation as it is now; NOT_FOUND for one `caller` may not see."""
        rows = await self._database.lookup(_RESERVATION_BY_ID, {"reservation": reservation_id})
        if not rows:
            raise reservation_not_found(reservation_id)
        reservation = ReservationRecord(**rows[0]._mapping)
        check_may_see_reservation(caller, reservation_id, reservation.user_id)
        return reservation.as_of(self._clock.now())

    async def adjust(
        self, session: AsyncSession, caller: Caller, product_id: str, delta: int, reason: str
    ) -> Stock:
        """Receive (`delta` > 0) or remove units; never below the reserved quantity.

        Announces ProductOutOfStock when it brings available stock from above zero to zero.
        """
        now = self._clock.now()
        # Unlocked: the access check reads only the merchant, which never changes.
        row = (await session.execute(_PRODUCT_BY_ID, {"product": product_id, "now": now})).first()
        if row is None:
            raise product_not_found(product_id)
        product = record_of(row)
        if not caller.has_role(Role.SYSTEM):  # orders returns the units of a reversed sale
            check_may_change_product(caller, product_id, product.merchant_id, product.status)
        await self._expire_holds_of(session, product_id, now)
        adjusted = (
            await session.execute(_ADJUST_UNITS, {"product": product_id, "delta": delta})
        ).first()
        if adjusted is None:
            counters = (await session.execute(_COUNTERS, {"product": product_id})).one()
            raise FailedPrecondition(
                "STOCK_BELOW_RESERVED",
                "the stocked quantity may not drop below the reserved quantity",
                metadata={
                    "product_id": product_id,
                    "delta": str(delta),
                    "stocked_quantity": str(counters.stocked),
                    "reserved_quantity": str(counters.reserved),
                },
            )
        session.add(
            StockAdjustment(
                adjustment_id=new_id(),
                product_id=product_id,
                actor_id=caller.user_id,
                delta=delta,
                reason=reason,
                stocked_after=adjusted.stocked,
                create_time=now,
            )
        )
        stock = Stock(adjusted.stocked, adjusted.reserved)
        before = Stock(adjusted.stocked - delta, adjusted.reserved)
        if stock.available == 0 and before.available > 0:
            await self._out_of_stock(session, product_id, adjusted.merchant_id, stock, now)
        return stock

    async def expire_due(self, limit: int = SWEEP_BATCH) -> int:
        """Record up to `limit` PENDING reservations past their expire_time as EXPIRED and
        return their units; announces StockReleased for each. Returns how many."""
        now = self._clock.now()
        async with self._database.write() as session:
            due = (await session.execute(_DUE_HOLDS, {"now": now, "limit": limit})).all()
            if not due:
                return 0
            await session.execute(
                _EXPIRE_HOLDS, {"reservation_ids": [hold.reservation_id for hold in due]}
            )
            by_product = sorted(due, key=lambda hold: hold.product_id)
            for product_id, holds in itertools.groupby(by_product, key=lambda h: h.product_id):
                await self._return_expired(session, product_id, list(holds), now)
        return len(due)

    async def _expire_holds_of(self, session: AsyncSession, product_id: str, now: datetime) -> None:
        expired = (
            await session.execute(_EXPIRE_HOLDS_OF, {"product": product_id, "now": now})
        ).all()
        if expired:
            await self._return_expired(session, product_id, expired, now)

    async def _return_expired(
        self, session: AsyncSession, product_id: str, holds: Sequence[Any], now: datetime
    ) -> None:
        total = sum(hold.quantity for hold in holds)
        returned = (
            await session.execute(_RETURN_UNITS, {"product": product_id, "quantity": total})
        ).one()
        # Each event carries the stock right after its own units returned.
        still_held = total
        for hold in sorted(holds, key=lambda h: (h.expire_time, h.reservation_id)):
            still_held -= hold.quantity
            await self._outbox.record(
                session,
                _released_event(
                    hold.reservation_id,
                    product_id,
                    returned.merchant_id,
                    hold.user_id,
                    hold.quantity,
                    events_pb2.STOCK_RELEASE_REASON_EXPIRED,
                    Stock(returned.stocked, returned.reserved + still_held),
                    now,
                ),
                aggregate_id=product_id,
            )

    async def _refusal(
        self, session: AsyncSession, caller: Caller, product_id: str, quantity: int
    ) -> Exception:
        """Why units of `product_id` could not be taken, as the error to raise."""
        row = (
            await session.execute(_PRODUCT_BY_ID, {"product": product_id, "now": self._clock.now()})
        ).first()
        if row is None:
            return product_not_found(product_id)
        product = record_of(row)
        if product.status != PUBLISHED:
            if not may_manage(caller, product.merchant_id):
                return product_not_found(product_id)
            return FailedPrecondition(
                "PRODUCT_NOT_PUBLISHED",
                "only a published product can be reserved",
                metadata={
                    "product_id": product_id,
                    "current_status": f"PRODUCT_STATUS_{product.status}",
                },
            )
        return FailedPrecondition(
            "OUT_OF_STOCK",
            f"{quantity} units requested, {product.stock.available} available",
            metadata={
                "product_id": product_id,
                "requested_quantity": str(quantity),
                "available_quantity": str(product.stock.available),
            },
        )

    async def _pending(
        self, session: AsyncSession, caller: Caller, reservation_id: str, now: datetime
    ) -> ReservationRecord:
        """The reservation, locked, if `caller` may see it and it can still be resolved."""
        row = (
            await session.execute(_LOCKED_RESERVATION_BY_ID, {"reservation": reservation_id})
        ).first()
        if row is None:
            raise reservation_not_found(reservation_id)
        reservation = ReservationRecord(**row._mapping)
        check_may_see_reservation(caller, reservation_id, reservation.user_id)
        current = reservation.as_of(now)
        if current.status == EXPIRED:
            raise FailedPrecondition(
                "RESERVATION_EXPIRED",
                "the reservation expired and its units were returned",
                metadata={
                    "reservation_id": reservation_id,
                    "expire_time": to_timestamp(reservation.expire_time).ToJsonString(),
                },
            )
        if current.status != PENDING:
            raise FailedPrecondition(
                "RESERVATION_ALREADY_RESOLVED",
                f"the reservation is already {current.status.lower()}",
                metadata={
                    "reservation_id": reservation_id,
                    "status": f"RESERVATION_STATUS_{current.status}",
                },
            )
        return reservation

    async def _resolve(
        self, session: AsyncSession, reservation: ReservationRecord, status: str, now: datetime
    ) -> ReservationRecord:
        await session.execute(
            RESERVATIONS.update()
            .where(_R.reservation_id == reservation.reservation_id)
            .values(status=status, resolve_time=now)
        )
        # The product's own expired holds, so the stock the event reports is exact.
        await self._expire_holds_of(session, reservation.product_id, now)
        return ReservationRecord(
            reservation_id=reservation.reservation_id,
            product_id=reservation.product_id,
            user_id=reservation.user_id,
            quantity=reservation.quantity,
            status=status,
            expire_time=reservation.expire_time,
            create_time=reservation.create_time,
            resolve_time=now,
        )

    async def _out_of_stock(
        self, session: AsyncSession, product_id: str, merchant_id: str, stock: Stock, now: datetime
    ) -> None:
        self._metrics.stock_out(session)
        await self._outbox.record(
            session,
            events_pb2.ProductOutOfStock(
                product_id=product_id,
                merchant_id=merchant_id,
                stock=stock_message(stock),
                occur_time=to_timestamp(now),
            ),
            aggregate_id=product_id,
        )


def _released_event(
    reservation_id: str,
    product_id: str,
    merchant_id: str,
    user_id: str,
    quantity: int,
    reason: events_pb2.StockReleaseReason.ValueType,
    stock: Stock,
    now: datetime,
) -> events_pb2.StockReleased:
    return events_pb2.StockReleased(
        reservation_id=reservation_id,
        product_id=product_id,
        merchant_id=merchant_id,
        user_id=user_id,
        quantity=quantity,
        reason=reason,
        stock=stock_message(stock),
        occur_time=to_timestamp(now),
    )


def _columns(reservation: ReservationRecord) -> dict[str, Any]:
    return {
        "reservation_id": reservation.reservation_id,
        "product_id": reservation.product_id,
        "user_id": reservation.user_id,
        "quantity": reservation.quantity,
        "status": reservation.status,
        "expire_time": reservation.expire_time,
        "create_time": reservation.create_time,
        "resolve_time": reservation.resolve_time,
    }
