"""An order as the saga sees it: its state, its steps, and the names they are stored by."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

__all__ = [
    "MAX_ATTEMPTS",
    "OrderKind",
    "OrderRecord",
    "OrderStatus",
    "Outcome",
    "Step",
    "StepRecord",
]

MAX_ATTEMPTS = 5
"""Attempts one order (one buyer's key) may go through before it stays CANCELLED."""


class OrderStatus(enum.StrEnum):
    """An order's state as stored (see `OrderStatus` in the proto)."""

    PENDING = "pending"
    PAYMENT_PENDING = "payment_pending"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    REVERSED = "reversed"

    @property
    def sold(self) -> bool:
        """Whether the order is past the pivot: its units left the stock."""
        return self in (OrderStatus.PAYMENT_PENDING, OrderStatus.COMPLETED, OrderStatus.REVERSED)


class OrderKind(enum.StrEnum):
    """What an order buys, and so which saga steps it takes (see `order_kinds`)."""

    PRODUCT = "product"
    """A catalogue product, bought by its buyer (CreateOrder)."""
    PAYMENT = "payment"
    """A payment to a merchant the buyer confirmed in a mini-app (CreatePaymentOrder)."""


class Step(enum.StrEnum):
    """A saga step; also the order's `next_step`, where NONE means terminal."""

    NONE = ""
    PRODUCT = "product"
    RESERVE = "reserve"
    HOLD = "hold"
    COMMIT = "commit"
    CAPTURE = "capture"
    RELEASE = "release"
    VOID = "void"
    REHOLD = "rehold"
    RESTOCK = "restock"


class Outcome(enum.StrEnum):
    """How a step ended."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One line of an order's timeline."""

    attempt: int
    name: Step
    outcome: Outcome
    reason: str
    time: datetime


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """An order row and its timeline.

    A payment order has no product: `product_id` and `title` are empty, `quantity` is 1
    and `unit_price_minor` its amount, so the columns every order has keep their rules.
    """

    order_id: str
    buyer_id: str
    request_id: str
    fingerprint: str
    merchant_id: str
    product_id: str
    title: str
    quantity: int
    currency_code: str
    unit_price_minor: int
    total_minor: int
    status: OrderStatus
    next_step: Step
    attempt: int
    collections: int
    reached: Step
    failure_reason: str
    failure_step: Step
    reservation_id: str | None
    hold_id: str | None
    transaction_id: str | None
    create_time: datetime
    update_time: datetime
    timeline: tuple[StepRecord, ...] = field(default=())
    kind: OrderKind = OrderKind.PRODUCT
    description: str = ""
    """What a payment order pays for; empty for a product order."""
    mini_app_id: str | None = None
    payment_request_id: str | None = None

    def request_id_of(self, step: str) -> str:
        """The upstream `request_id` of `step` in the current attempt: the same on every
        replay, by any replica, so a step that happened returns its first result."""
        return f"order-{self.order_id}-{self.attempt}-{step}"
