"""From a confirmed payment request to its outcome: the confirming call's own attempt,
and the settler that finishes what that attempt could not.

`pay_confirmed` runs in ConfirmPaymentRequest right after the confirmation committed:
it places the order (see `payment_orders`) and records SUCCEEDED or FAILED when the
order is final, so the user's reply usually shows the outcome. When it is not (orders or
the wallet away, the order still collecting), the request stays CONFIRMED and becomes
due for the settler, which every replica runs: each round claims one due request with a
lease (SKIP LOCKED, like the webhook deliverer), asks orders again under the same key,
and records the outcome or postpones the request with a doubling backoff. A replica
that dies mid-call loses its claim when the lease lapses. The same round also expires
requests nobody confirmed in time, so their mini-apps hear of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from services.miniapps.payment_orders import OrderOutcome, PaymentOrders
from services.miniapps.payment_requests import (
    PaymentRequestRecord,
    PaymentRequests,
    PaymentRequestState,
)
from services.runtime.clock import Clock
from services.runtime.ids import new_id
from services.runtime.tasks import stop_task

__all__ = ["Settlement"]

_log = logging.getLogger(__name__)


class Settlement:
    """Pays confirmed payment requests; see the module's docstring."""

    def __init__(
        self,
        requests: PaymentRequests,
        orders: PaymentOrders,
        clock: Clock,
        *,
        lease: timedelta,
        interval_seconds: float,
        backoff_max_seconds: float,
    ) -> None:
        """`lease` must stay well above one call's deadline to orders."""
        self._requests = requests
        self._orders = orders
        self._clock = clock
        self._lease = lease
        self._interval = interval_seconds
        self._backoff_max = backoff_max_seconds
        self._holder = new_id()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def backoff(self, attempts: int) -> timedelta:
        """How long after its `attempts`-th unfinished try a payment is tried again."""
        exponent = min(max(attempts - 1, 0), 30)
        return timedelta(seconds=min(self._interval * 2**exponent, self._backoff_max))

    async def pay_confirmed(self, request: PaymentRequestRecord) -> PaymentRequestRecord:
        """Try to pay a request just CONFIRMED (a request in any other state is returned
        as it is); the request as it then stands."""
        if request.state is not PaymentRequestState.CONFIRMED:
            return request
        return await self._attempt(request)

    async def _attempt(self, request: PaymentRequestRecord) -> PaymentRequestRecord:
        settled = await self._orders.pay(request)
        if settled.outcome is OrderOutcome.PAID:
            return await self._requests.settle(
                request.payment_request_id, order_id=settled.order_id
            )
        if settled.outcome is OrderOutcome.REFUSED:
            return await self._requests.settle(
                request.payment_request_id,
                order_id=settled.order_id,
                failure_reason=settled.reason or "REFUSED",
            )
        attempts = request.settle_attempts + 1
        _log.info(
            "payment request %s not settled yet (%s); retrying",
            request.payment_request_id,
            settled.reason or "order not final",
        )
        await self._requests.postpone(
            request.payment_request_id, self._clock.now() + self.backoff(attempts), attempts
        )
        return request

    async def settle_one(self) -> bool:
        """Claim and try one due request; whether there was one."""
        claimed = await self._requests.claim_due(self._holder, self._lease)
        if claimed is None:
            return False
        await self._attempt(claimed)
        return True

    def wake(self) -> None:
        """Look for due work now rather than at the next poll."""
        self._wake.set()

    def start(self) -> None:
        """Start settling on the running loop."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="payment-settler")

    async def close(self) -> None:
        """Stop settling; a claim cut short lapses and another replica takes it."""
        task, self._task = self._task, None
        if task is not None:
            await stop_task(task, within=2.0)

    async def _run(self) -> None:
        while True:
            try:
                await self._requests.expire_due()
                while await self.settle_one():
                    pass
            except Exception as error:  # the database may be away: next round
                _log.warning("settling payments failed (%s: %s)", type(error).__name__, error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
