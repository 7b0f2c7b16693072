"""Orders in their database: created, leased, changed step by step, listed.

Every change of an order after its creation is one transaction that (a) updates the row
only while the caller still holds its lease (`lease_owner`, until `lease_expire_time`),
renewing the lease, (b) appends the step's outcome to the timeline and (c) records the
event of a terminal state in the outbox. A driver that lost its lease (it stalled past
the expiry and another replica took the order over) changes nothing: `LeaseLost`.
Claims are conditional UPDATEs, so they work alike on SQLite and PostgreSQL and any
number of replicas share the work without locks held across calls.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from google.protobuf.message import Message
from sqlalchemy import Row, and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.database import Database
from services.database.insert_if_absent import insert_if_absent
from services.eventbus import Outbox
from services.orders.checkout_metrics import CheckoutMetrics
from services.orders.models import FIRST_PURCHASES, ORDER_STEPS, ORDERS
from services.orders.records import (
    OrderKind,
    OrderRecord,
    OrderStatus,
    Outcome,
    Step,
    StepRecord,
)
from services.runtime.clock import Clock

__all__ = ["Announce", "LeaseLost", "OrderBook", "OrderPage"]

Announce = Callable[[OrderRecord], Message | None]
"""The event to publish for an order in its new state, if any."""

_UNFINISHED = (OrderStatus.PENDING.value, OrderStatus.PAYMENT_PENDING.value)
_SOLD = tuple(status.value for status in OrderStatus if status.sold)


class LeaseLost(Exception):
    """The order is no longer this driver's to change: another one took it over."""


@dataclass(frozen=True, slots=True)
class OrderPage:
    """A page of orders, newest first, and the id to continue after (None: the last)."""

    orders: Sequence[OrderRecord]
    next_after: str | None


def _step(row: Row[Any]) -> StepRecord:
    return StepRecord(
        attempt=row.attempt,
        name=Step(row.name),
        outcome=Outcome(row.outcome),
        reason=row.reason,
        time=row.time,
    )


def _record(row: Row[Any], steps: Sequence[StepRecord]) -> OrderRecord:
    return OrderRecord(
        order_id=row.order_id,
        buyer_id=row.buyer_id,
        request_id=row.request_id,
        fingerprint=row.fingerprint,
        merchant_id=row.merchant_id,
        product_id=row.product_id,
        title=row.title,
        quantity=row.quantity,
        currency_code=row.currency_code,
        unit_price_minor=row.unit_price_minor,
        total_minor=row.total_minor,
        status=OrderStatus(row.status),
        next_step=Step(row.next_step),
        attempt=row.attempt,
        collections=row.collections,
        reached=Step(row.reached),
        failure_reason=row.failure_reason,
        failure_step=Step(row.failure_step),
        reservation_id=row.reservation_id,
        hold_id=row.hold_id,
        transaction_id=row.transaction_id,
        create_time=row.create_time,
        update_time=row.update_time,
        timeline=tuple(steps),
        kind=OrderKind(row.kind),
        description=row.description,
        mini_app_id=row.mini_app_id,
        payment_request_id=row.payment_request_id,
    )


_ORDER_COLUMNS = [c for c in ORDERS.c if c.key not in ("lease_owner", "lease_expire_time")]


class OrderBook:
    """Reads and writes orders; every write after creation is fenced by the lease."""

    def __init__(
        self,
        database: Database,
        outbox: Outbox,
        clock: Clock,
        *,
        lease: timedelta,
        metrics: CheckoutMetrics,
    ) -> None:
        self._database = database
        self._outbox = outbox
        self._clock = clock
        self._lease = lease
        self._metrics = metrics
        self._first_purchase = insert_if_absent(database, FIRST_PURCHASES)

    # Reads

    async def get(self, order_id: str) -> OrderRecord | None:
        """The order with its timeline, or None."""
        async with self._database.read() as session:
            found = await self._load(session, [ORDERS.c.order_id == order_id])
        return found[0] if found else None

    async def find_by_key(self, buyer_id: str, request_id: str) -> OrderRecord | None:
        """The order the buyer created with `request_id`, or None."""
        async with self._database.read() as session:
            found = await self._load(
                session, [ORDERS.c.buyer_id == buyer_id, ORDERS.c.request_id == request_id]
            )
        return found[0] if found else None

    async def page(
        self,
        *,
        buyer_id: str | None = None,
        merchant_id: str | None = None,
        after: str | None,
        size: int,
    ) -> OrderPage:
        """A buyer's orders, or a merchant's sales, newest first, after order `after`."""
        where = []
        if buyer_id is not None:
            where.append(ORDERS.c.buyer_id == buyer_id)
        if merchant_id is not None:
            where += [ORDERS.c.merchant_id == merchant_id, ORDERS.c.status.in_(_SOLD)]
        if after is not None:
            where.append(ORDERS.c.order_id < after)
        async with self._database.read() as session:
            orders = await self._load(session, where, limit=size + 1)
        more = len(orders) > size
        orders = orders[:size]
        return OrderPage(orders, orders[-1].order_id if more and orders else None)

    async def due(self, limit: int) -> list[str]:
        """Unfinished orders nobody drives whose next try is due, oldest due first."""
        now = self._clock.now()
        query = (
            select(ORDERS.c.order_id)
            .where(
                ORDERS.c.status.in_(_UNFINISHED),
                ORDERS.c.retry_time <= now,
                or_(ORDERS.c.lease_owner.is_(None), ORDERS.c.lease_expire_time <= now),
            )
            .order_by(ORDERS.c.retry_time)
            .limit(limit)
        )
        async with self._database.read() as session:
            return list((await session.execute(query)).scalars())

    async def _load(
        self, session: AsyncSession, where: Sequence[Any], *, limit: int | None = None
    ) -> list[OrderRecord]:
        query = select(*_ORDER_COLUMNS).where(*where).order_by(ORDERS.c.order_id.desc())
        if limit is not None:
            query = query.limit(limit)
        rows = (await session.execute(query)).all()
        if not rows:
            return []
        steps: dict[str, list[StepRecord]] = {row.order_id: [] for row in rows}
        step_rows = await session.execute(
            select(ORDER_STEPS)
            .where(ORDER_STEPS.c.order_id.in_(list(steps)))
            .order_by(ORDER_STEPS.c.order_id, ORDER_STEPS.c.seq)
        )
        for step in step_rows:
            steps[step.order_id].append(_step(step))
        return [_record(row, steps[row.order_id]) for row in rows]

    # Writes

    async def create(self, order: OrderRecord, owner: str) -> bool:
        """Insert `order`, leased to `owner`; False if the buyer's key exists already."""
        now = self._clock.now()
        values = {
            column.key: getattr(order, column.key)
            for column in _ORDER_COLUMNS
            if hasattr(order, column.key)
        }
        values.update(
            kind=order.kind.value,
            status=order.status.value,
            next_step=order.next_step.value,
            reached=order.reached.value,
            failure_step=order.failure_step.value,
            lease_owner=owner,
            lease_expire_time=now + self._lease,
            retry_time=now,
            retries=0,
        )
        try:
            async with self._database.write() as session:
                await session.execute(ORDERS.insert().values(**values))
                self._metrics.started(session, order)
        except IntegrityError:
            return False  # a concurrent call with the same key won
        return True

    async def claim(self, order_id: str, owner: str) -> bool:
        """Take the order's lease for `owner` if nobody else holds a live one."""
        now = self._clock.now()
        statement = (
            update(ORDERS)
            .where(
                ORDERS.c.order_id == order_id,
                or_(
                    ORDERS.c.lease_owner.is_(None),
                    ORDERS.c.lease_expire_time <= now,
                    ORDERS.c.lease_owner == owner,
                ),
            )
            .values(lease_owner=owner, lease_expire_time=now + self._lease)
        )
        async with self._database.write() as session:
            claimed: int = (await session.execute(statement)).rowcount  # type: ignore[attr-defined]
        return claimed == 1

    async def release(self, order_id: str, owner: str, *, retry_in: timedelta | None) -> None:
        """Give the lease back. `retry_in`: an interrupted order's wait before the
        reconciler tries again (doubling with every try in a row); None: it progressed."""
        now = self._clock.now()
        values: dict[str, Any] = {"lease_owner": None, "lease_expire_time": None}
        if retry_in is None:
            values.update(retries=0, retry_time=now)
        else:
            values.update(retries=ORDERS.c.retries + 1, retry_time=now + retry_in)
        statement = (
            update(ORDERS)
            .where(ORDERS.c.order_id == order_id, ORDERS.c.lease_owner == owner)
            .values(**values)
        )
        async with self._database.write() as session:
            await session.execute(statement)

    async def retries(self, order_id: str) -> int:
        """How many tries of the order in a row were interrupted."""
        async with self._database.read() as session:
            found = await session.execute(
                select(ORDERS.c.retries).where(ORDERS.c.order_id == order_id)
            )
            return int(found.scalar_one_or_none() or 0)

    async def change(
        self,
        order: OrderRecord,
        owner: str,
        changes: Mapping[str, Any],
        *,
        step: tuple[Step, Outcome, str] | None = None,
        announce: Announce | None = None,
    ) -> OrderRecord:
        """Apply `changes` to the order and append `step` to its timeline, in one
        transaction, while `owner` holds the lease (renewed); the order as it is now.

        An INTERRUPTED step that repeats the timeline's last line is not appended again,
        so an outage does not grow the timeline by a line per try.
        """
        now = self._clock.now()
        values = {
            key: value.value if isinstance(value, Step | OrderStatus) else value
            for key, value in changes.items()
        }
        values.update(update_time=now, lease_expire_time=now + self._lease)
        statement = (
            update(ORDERS)
            .where(
                and_(
                    ORDERS.c.order_id == order.order_id,
                    ORDERS.c.lease_owner == owner,
                    ORDERS.c.lease_expire_time > now,
                )
            )
            .values(**values)
        )
        async with self._database.write() as session:
            if (await session.execute(statement)).rowcount != 1:  # type: ignore[attr-defined]
                raise LeaseLost(order.order_id)
            if step is not None:
                await self._append(session, order, step, now)
            [current] = await self._load(session, [ORDERS.c.order_id == order.order_id])
            event = announce(current) if announce is not None else None
            if event is not None:
                await self._outbox.record(session, event, aggregate_id=order.order_id)
            first_purchase = False
            if current.status is OrderStatus.COMPLETED and order.status is not current.status:
                first_purchase = await self._first_of_buyer(session, current, now)
            self._metrics.changed(session, order, current, step, first_purchase=first_purchase)
        return current

    async def _first_of_buyer(
        self, session: AsyncSession, order: OrderRecord, now: datetime
    ) -> bool:
        """Whether the COMPLETED `order` is its buyer's first, decided in the transaction
        that completes it: the insert that creates the buyer's row. On PostgreSQL the
        insert of a concurrent first purchase waits for this one and then does nothing."""
        created = await session.execute(
            self._first_purchase.values(
                buyer_id=order.buyer_id, order_id=order.order_id, create_time=now
            )
        )
        return bool(created.rowcount == 1)  # type: ignore[attr-defined]

    async def _append(
        self,
        session: AsyncSession,
        order: OrderRecord,
        step: tuple[Step, Outcome, str],
        now: datetime,
    ) -> None:
        name, outcome, reason = step
        last = (
            await session.execute(
                select(
                    ORDER_STEPS.c.seq,
                    ORDER_STEPS.c.attempt,
                    ORDER_STEPS.c.name,
                    ORDER_STEPS.c.outcome,
                    ORDER_STEPS.c.reason,
                )
                .where(ORDER_STEPS.c.order_id == order.order_id)
                .order_by(ORDER_STEPS.c.seq.desc())
                .limit(1)
            )
        ).first()
        line = (order.attempt, name.value, outcome.value, reason)
        if (
            last is not None
            and outcome is Outcome.INTERRUPTED
            and (last.attempt, last.name, last.outcome, last.reason) == line
        ):
            return
        await session.execute(
            ORDER_STEPS.insert().values(
                order_id=order.order_id,
                seq=(last.seq + 1) if last is not None else 1,
                attempt=order.attempt,
                name=name.value,
                outcome=outcome.value,
                reason=reason,
                time=now,
            )
        )
