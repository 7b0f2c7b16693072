"""Runs saga drives as tasks of their own, under the order's lease.

A drive started by a buyer's call is not that call's task: a caller that goes away (the
app closes, the BFF dies mid-request) cancels its RPC, not the purchase, which runs on
to a resting state. Stopping the service cancels unfinished drives; their orders keep
their rows and leases, and once the leases lapse the reconciler of any replica resumes
them.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from services.orders.order_book import LeaseLost, OrderBook
from services.orders.records import OrderRecord
from services.orders.saga import Direction, DriveResult, OrderSaga
from services.runtime.errors import Unavailable
from services.runtime.tasks import stop_task

__all__ = ["Drivers"]

_log = logging.getLogger(__name__)


class Drivers:
    """Drives orders whose lease the caller took, and gives the lease back after."""

    def __init__(
        self,
        saga: OrderSaga,
        book: OrderBook,
        *,
        first_retry: timedelta,
        longest_retry: timedelta,
    ) -> None:
        self._saga = saga
        self._book = book
        self._first_retry = first_retry
        self._longest_retry = longest_retry
        self._tasks: set[asyncio.Task[DriveResult | None]] = set()
        self._closed = False

    async def run(self, order: OrderRecord, owner: str, direction: Direction) -> DriveResult | None:
        """Drive `order` (leased to `owner`); None if another driver took it over."""
        if self._closed:
            raise Unavailable("SHUTTING_DOWN", "the service is stopping; retry")
        task = asyncio.create_task(
            self._drive(order, owner, direction), name=f"order-{order.order_id}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        # The caller may be cancelled; the drive is not.
        return await asyncio.shield(task)

    async def _drive(
        self, order: OrderRecord, owner: str, direction: Direction
    ) -> DriveResult | None:
        retry_in: timedelta | None = None
        try:
            result = await self._saga.drive(order, owner, direction)
            if result.interrupted:
                retry_in = await self._backoff(order.order_id)
            return result
        except LeaseLost:
            _log.warning("order %s: lease lost to another driver", order.order_id)
            return None
        except BaseException:
            retry_in = await self._backoff(order.order_id)
            raise
        finally:
            # Shielded from the cancellation that stops the service, so a drive that
            # ends gives its lease back; if it is cut short the lease lapses by itself.
            await asyncio.shield(self._book.release(order.order_id, owner, retry_in=retry_in))

    async def _backoff(self, order_id: str) -> timedelta:
        retries = await self._book.retries(order_id)
        wait: timedelta = self._first_retry * (2 ** min(retries, 20))
        return min(wait, self._longest_retry)

    async def close(self) -> None:
        """Cancel drives still running and wait for them to stop."""
        self._closed = True
        for task in list(self._tasks):
            await stop_task(task, within=2.0)
