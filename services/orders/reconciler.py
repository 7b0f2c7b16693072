"""The reconciler: drives every unfinished order that nobody drives to a terminal state.

It runs on every replica (a `Sweeper` round every `ORDERS_RECONCILE_SECONDS`). Each round
picks orders that are PENDING or PAYMENT_PENDING, not leased (or whose lease lapsed: a
replica died mid-order) and due (an interrupted order waits, doubling, before its next
try), and claims each with a conditional UPDATE of its lease before driving it, so two
replicas never drive one order at once and a dead replica's orders are taken over.
"""

from __future__ import annotations

from services.orders.drivers import Drivers
from services.orders.order_book import OrderBook
from services.orders.saga import Direction
from services.runtime.ids import new_id

__all__ = ["BATCH", "Reconciler"]

BATCH = 20
"""Orders one round looks at, at most."""


class Reconciler:
    """One round of settling unfinished orders."""

    def __init__(self, book: OrderBook, drivers: Drivers) -> None:
        self._book = book
        self._drivers = drivers

    async def settle_due(self) -> int:
        """Drive the orders due now; how many were looked at (a full batch: go again)."""
        due = await self._book.due(BATCH)
        for order_id in due:
            owner = new_id()
            if not await self._book.claim(order_id, owner):
                continue  # another replica, or a buyer's retry, has it
            order = await self._book.get(order_id)
            if order is None or not order.next_step:
                await self._book.release(order_id, owner, retry_in=None)
                continue
            await self._drivers.run(order, owner, Direction.SETTLE)
        return len(due)
