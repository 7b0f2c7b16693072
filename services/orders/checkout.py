"""CreateOrder and CreatePaymentOrder: a buyer's checkout, from the checks to the answer.

A product is read first (no effect anywhere): an unlisted product, a merchant buying
from themself or a changed price is refused before an order exists; a payment is only
checked for a buyer paying themself. Then the order row is written under the buyer's key
(buyer, request_id) and the saga drives it. The same key again finds that row: same
parameters resume or replay it, others are refused; a CANCELLED order is tried again as
its next attempt. A payment's key is its buyer's too (not its caller's, the miniapps
service acting for every user), so two users' payments never collide.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import grpc
from superapp.catalogue.v1 import catalogue_service_pb2 as catalogue_pb

from services.orders.drivers import Drivers
from services.orders.order_book import OrderBook
from services.orders.order_kinds import steps_of
from services.orders.peers import PeerFailure, Peers, Refused, Unreachable
from services.orders.records import (
    MAX_ATTEMPTS,
    OrderKind,
    OrderRecord,
    OrderStatus,
    Step,
)
from services.orders.saga import Direction, DriveResult
from services.runtime.clock import Clock
from services.runtime.errors import (
    Code,
    FailedPrecondition,
    ServiceError,
)
from services.runtime.ids import new_id

__all__ = ["Checkout", "Payment", "Purchase"]

_CODES = {code.value: code for code in Code}
# How long a call waits for another driver (a concurrent retry, the reconciler) to let
# go of its order before answering ORDER_IN_PROGRESS.
_WAIT_STEP_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class Purchase:
    """What a buyer asks for under one key."""

    buyer_id: str
    request_id: str
    product_id: str
    quantity: int
    currency_code: str
    unit_price_minor: int

    @property
    def fingerprint(self) -> str:
        """A digest of the parameters a retry with the same key must repeat."""
        asked = f"{self.product_id}\n{self.quantity}\n{self.currency_code}\n{self.unit_price_minor}"
        return hashlib.sha256(asked.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Payment:
    """What the miniapps service asks a buyer to pay a merchant, under the buyer's key."""

    buyer_id: str
    request_id: str
    merchant_id: str
    currency_code: str
    amount_minor: int
    description: str
    mini_app_id: str
    payment_request_id: str

    @property
    def fingerprint(self) -> str:
        """A digest of the parameters a retry with the same key must repeat; its first
        line sets it apart from any purchase's under the same key."""
        asked = "\n".join(
            [
                "payment",
                self.merchant_id,
                self.currency_code,
                str(self.amount_minor),
                self.description,
                self.mini_app_id,
                self.payment_request_id,
            ]
        )
        return hashlib.sha256(asked.encode()).hexdigest()


Recheck = Callable[[], Awaitable[object]]
"""What a CANCELLED order's next attempt checks again before it starts (refusing raises)."""


class CheckoutFailed(ServiceError):
    """A checkout failure: the deciding service's status, reason, domain and metadata,
    plus where the order stands (`order_id`, `checkout_step`, `checkout_state`)."""

    def __init__(self, failure: PeerFailure, metadata: Mapping[str, str]) -> None:
        code = failure.code
        refused = code.name in _CODES and code is not grpc.StatusCode.UNKNOWN
        super().__init__(
            failure.reason,
            failure.message or failure.reason,
            metadata={**failure.metadata, **metadata},
            domain=failure.domain or None,
        )
        # An outcome the peer did not decide (a deadline, a cancelled call) is, to the
        # buyer, a service that is not available right now.
        self.code = _CODES[code.name] if refused else Code.UNAVAILABLE


def _state(order: OrderRecord | None) -> str:
    settled = order is None or order.status is OrderStatus.CANCELLED
    return "NOTHING_HELD" if settled else "PENDING"


def _place(order: OrderRecord | None, step: Step) -> dict[str, str]:
    place = {"checkout_step": step.value, "checkout_state": _state(order)}
    if order is not None:
        place["order_id"] = order.order_id
    return place


class Checkout:
    """Creates, resumes and retries orders for their buyers."""

    def __init__(
        self, book: OrderBook, peers: Peers, drivers: Drivers, clock: Clock, *, wait_seconds: float
    ) -> None:
        self._book = book
        self._peers = peers
        self._drivers = drivers
        self._clock = clock
        self._wait_seconds = wait_seconds

    async def buy(self, purchase: Purchase) -> OrderRecord:
        """The order of `purchase`'s key once it is sold (COMPLETED, PAYMENT_PENDING or
        REVERSED); any other end is raised as a `ServiceError`."""

        async def new_order() -> OrderRecord:
            return self._new_order(purchase, await self._product(purchase))

        async def recheck() -> object:
            return await self._product(purchase)

        return await self._checkout(
            purchase.buyer_id, purchase.request_id, purchase.fingerprint, new_order, recheck
        )

    async def pay(self, payment: Payment) -> OrderRecord:
        """The payment order of `payment`'s key once its funds are held (COMPLETED,
        PAYMENT_PENDING or REVERSED); any other end is raised as a `ServiceError`."""
        if payment.buyer_id == payment.merchant_id:
            raise FailedPrecondition(
                "SELF_PURCHASE",
                "a user cannot pay themself",
                metadata={"merchant_id": payment.merchant_id, "checkout_state": "NOTHING_HELD"},
            )

        async def new_order() -> OrderRecord:
            return self._new_payment_order(payment)

        async def recheck() -> object:
            return None  # a payment depends on nothing that may have changed here

        return await self._checkout(
            payment.buyer_id, payment.request_id, payment.fingerprint, new_order, recheck
        )

    async def _checkout(
        self,
        buyer_id: str,
        request_id: str,
        fingerprint: str,
        new_order: Callable[[], Awaitable[OrderRecord]],
        recheck: Recheck,
    ) -> OrderRecord:
        existing = await self._book.find_by_key(buyer_id, request_id)
        if existing is None:
            order = await new_order()
            owner = new_id()
            if await self._book.create(order, owner):
                return self._answer(await self._drivers.run(order, owner, Direction.FORWARD))
            existing = await self._book.find_by_key(buyer_id, request_id)
            assert existing is not None  # the concurrent call's row
        if existing.fingerprint != fingerprint:
            raise FailedPrecondition(
                "IDEMPOTENCY_KEY_REUSED",
                "request_id was already used for an order with different parameters",
                metadata={"request_id": request_id, "order_id": existing.order_id},
            )
        return await self._again(existing, recheck)

    async def _again(self, order: OrderRecord, recheck: Recheck) -> OrderRecord:
        while True:
            if order.status in (OrderStatus.COMPLETED, OrderStatus.REVERSED):
                return order
            owner = new_id()
            order = await self._claim(order, owner)
            if order.status is not OrderStatus.CANCELLED:
                if order.status in (OrderStatus.COMPLETED, OrderStatus.REVERSED):
                    await self._book.release(order.order_id, owner, retry_in=None)
                    return order
                # Unfinished: resume it for the buyer.
                result = await self._drivers.run(order, owner, Direction.FORWARD)
                if result is None or result.failure is not None or result.interrupted:
                    return self._answer(result)
                if result.order.status is not OrderStatus.CANCELLED:
                    return self._answer(result)
                # It only finished undoing an earlier attempt: the buyer asks again.
                order = result.order
                continue
            return await self._next_attempt(order, owner, recheck)

    async def _next_attempt(self, order: OrderRecord, owner: str, recheck: Recheck) -> OrderRecord:
        """Try a CANCELLED order (leased to `owner`) again as its next attempt."""
        try:
            if order.attempt >= MAX_ATTEMPTS:
                raise FailedPrecondition(
                    "CHECKOUT_ATTEMPTS_EXHAUSTED",
                    f"this request_id was used for {MAX_ATTEMPTS} failed checkouts; use a new one",
                    metadata={"order_id": order.order_id},
                )
            await recheck()
        except BaseException:
            await self._book.release(order.order_id, owner, retry_in=None)
            raise
        order = await self._book.change(order, owner, _reopened(order))
        return self._answer(await self._drivers.run(order, owner, Direction.FORWARD))

    async def _claim(self, order: OrderRecord, owner: str) -> OrderRecord:
        """The order, leased to `owner`, as it is once any other driver let go of it."""
        waited = 0.0
        while not await self._book.claim(order.order_id, owner):
            if waited >= self._wait_seconds:
                raise OrderInProgress(order.order_id)
            await asyncio.sleep(_WAIT_STEP_SECONDS)
            waited += _WAIT_STEP_SECONDS
        current = await self._book.get(order.order_id)
        assert current is not None
        return current

    async def _product(self, purchase: Purchase) -> catalogue_pb.Product:
        try:
            product = await self._peers.product(purchase.product_id)
        except (Refused, Unreachable) as error:
            raise CheckoutFailed(error.failure, _place(None, Step.PRODUCT)) from None
        if product.merchant_id == purchase.buyer_id:
            raise FailedPrecondition(
                "SELF_PURCHASE",
                "merchants cannot buy their own products",
                metadata={"product_id": product.product_id, **_place(None, Step.PRODUCT)},
            )
        price = product.price
        if (price.currency_code, price.amount_minor) != (
            purchase.currency_code,
            purchase.unit_price_minor,
        ):
            raise FailedPrecondition(
                "PRICE_CHANGED",
                "the product's price is not the one the checkout was asked to pay",
                metadata={
                    "product_id": product.product_id,
                    "currency_code": price.currency_code,
                    "price_minor": str(price.amount_minor),
                    **_place(None, Step.PRODUCT),
                },
            )
        return product

    def _new_order(self, purchase: Purchase, product: catalogue_pb.Product) -> OrderRecord:
        now = self._clock.now()
        return OrderRecord(
            order_id=new_id(),
            buyer_id=purchase.buyer_id,
            request_id=purchase.request_id,
            fingerprint=purchase.fingerprint,
            merchant_id=product.merchant_id,
            product_id=product.product_id,
            title=product.title[:200],
            quantity=purchase.quantity,
            currency_code=purchase.currency_code,
            unit_price_minor=purchase.unit_price_minor,
            total_minor=purchase.unit_price_minor * purchase.quantity,
            status=OrderStatus.PENDING,
            next_step=steps_of(OrderKind.PRODUCT).first,
            attempt=1,
            collections=0,
            reached=Step.NONE,
            failure_reason="",
            failure_step=Step.NONE,
            reservation_id=None,
            hold_id=None,
            transaction_id=None,
            create_time=now,
            update_time=now,
        )

    def _new_payment_order(self, payment: Payment) -> OrderRecord:
        now = self._clock.now()
        return OrderRecord(
            order_id=new_id(),
            buyer_id=payment.buyer_id,
            request_id=payment.request_id,
            fingerprint=payment.fingerprint,
            merchant_id=payment.merchant_id,
            product_id="",
            title="",
            quantity=1,
            currency_code=payment.currency_code,
            unit_price_minor=payment.amount_minor,
            total_minor=payment.amount_minor,
            status=OrderStatus.PENDING,
            next_step=steps_of(OrderKind.PAYMENT).first,
            attempt=1,
            collections=0,
            reached=Step.NONE,
            failure_reason="",
            failure_step=Step.NONE,
            reservation_id=None,
            hold_id=None,
            transaction_id=None,
            create_time=now,
            update_time=now,
            kind=OrderKind.PAYMENT,
            description=payment.description,
            mini_app_id=payment.mini_app_id,
            payment_request_id=payment.payment_request_id,
        )

    def _answer(self, result: DriveResult | None) -> OrderRecord:
        if result is None:
            raise OrderInProgress(None)
        order = result.order
        if order.status.sold:
            return order
        step = order.failure_step if order.failure_step is not Step.NONE else result.failure_step
        if result.failure is None:  # pragma: no cover - every unsold end has a cause
            raise FailedPrecondition("ORDER_NOT_COMPLETED", "the order could not be completed")
        raise CheckoutFailed(result.failure, _place(order, step))


def _reopened(order: OrderRecord) -> dict[str, object]:
    """The changes that start a CANCELLED order's next attempt."""
    return {
        "status": OrderStatus.PENDING,
        "next_step": steps_of(order.kind).first,
        "attempt": order.attempt + 1,
        "collections": 0,
        "reached": Step.NONE,
        "failure_reason": "",
        "failure_step": Step.NONE,
        "reservation_id": None,
        "hold_id": None,
    }


class OrderInProgress(ServiceError):
    """ABORTED `ORDER_IN_PROGRESS`: another driver holds the order."""

    code = Code.ABORTED

    def __init__(self, order_id: str | None) -> None:
        super().__init__(
            "ORDER_IN_PROGRESS",
            "the order is being worked on right now; retry shortly",
            metadata={"order_id": order_id} if order_id else None,
        )
