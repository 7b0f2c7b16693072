"""Orders' business metrics, read off the order's committed state changes.

Every change of an order is one transaction (`OrderBook.change`); what it changed, the
order before and after plus the timeline line it appends, says which stages of the
checkout funnel it reached. Counting there, after the commit, counts each stage once
per attempt whichever driver (the buyer's call, a retry of it, the reconciler of any
replica) made the change, and a change that lost its lease counts nothing.

Checkout funnel stages, per attempt of an order:
- `started`: an attempt began (the order was created, or a CANCELLED one was tried
  again under the same request_id);
- `stock_reserved`, `funds_held`: the reserve and the (first) hold step succeeded;
- `completed`: the payment was captured (COMPLETED);
- `compensated`: the attempt was undone (release, then void) and ended CANCELLED; one
  refused at the reservation had nothing to undo and is not counted here;
- `unpaid`: the units were sold but the payment could not be collected (REVERSED).

These count product orders (CreateOrder), as do the payment failures by merchant, so the
checkout ratios the dashboards and alerts read keep their meaning. Payment orders (a
mini-app's payment, CreatePaymentOrder) have a funnel of their own,
`superapp_payment_orders_total{stage}`: `started`, `funds_held`, `completed`,
`compensated` and `unpaid` as above, and `refused` (the hold was refused: CANCELLED
with nothing held). A buyer's first COMPLETED order of either kind is their first
purchase.
"""

from __future__ import annotations

import enum

from sqlalchemy.ext.asyncio import AsyncSession

from services.database.after_commit import AfterCommit, after_commit
from services.orders.records import OrderKind, OrderRecord, OrderStatus, Outcome, Step
from services.runtime.bounded_labels import BoundedLabels
from services.runtime.metrics import Metrics
from services.runtime.signup_funnel import SignupStage, signup_funnel

__all__ = ["CheckoutMetrics", "CheckoutStage", "PaymentOrderStage"]

_PAYMENT_STEPS = frozenset({Step.HOLD, Step.REHOLD, Step.CAPTURE})


class PaymentOrderStage(enum.StrEnum):
    """A stage of a payment order (see the module's description)."""

    STARTED = "started"
    FUNDS_HELD = "funds_held"
    COMPLETED = "completed"
    REFUSED = "refused"
    COMPENSATED = "compensated"
    UNPAID = "unpaid"


def _payment_stages(
    before: OrderRecord, after: OrderRecord, step: tuple[Step, Outcome, str] | None
) -> list[PaymentOrderStage]:
    # The product funnel's stages where they mean the same, and the refusal of the hold.
    stages = [
        PaymentOrderStage(stage.value)
        for stage in _stages(before, after, step)
        if stage is not CheckoutStage.STOCK_RESERVED
    ]
    if (
        after.status is OrderStatus.CANCELLED
        and before.status is not OrderStatus.CANCELLED
        and step is not None
        and step[:2] == (Step.HOLD, Outcome.FAILED)
    ):
        stages.append(PaymentOrderStage.REFUSED)
    return stages


class CheckoutStage(enum.StrEnum):
    """A stage of the checkout funnel (see the module's description)."""

    STARTED = "started"
    STOCK_RESERVED = "stock_reserved"
    FUNDS_HELD = "funds_held"
    COMPLETED = "completed"
    COMPENSATED = "compensated"
    UNPAID = "unpaid"


def _stages(
    before: OrderRecord, after: OrderRecord, step: tuple[Step, Outcome, str] | None
) -> list[CheckoutStage]:
    stages = []
    if after.attempt > before.attempt:
        stages.append(CheckoutStage.STARTED)
    if step is not None and step[1] is Outcome.SUCCEEDED:
        if step[0] is Step.RESERVE:
            stages.append(CheckoutStage.STOCK_RESERVED)
        elif step[0] is Step.HOLD:
            stages.append(CheckoutStage.FUNDS_HELD)
    if after.status is not before.status:
        if after.status is OrderStatus.COMPLETED:
            stages.append(CheckoutStage.COMPLETED)
        elif after.status is OrderStatus.REVERSED:
            stages.append(CheckoutStage.UNPAID)
        elif after.status is OrderStatus.CANCELLED and before.next_step is Step.VOID:
            stages.append(CheckoutStage.COMPENSATED)
    return stages


class CheckoutMetrics:
    """`superapp_checkout_funnel_total{stage}`, `superapp_payment_failures_total{merchant,
    reason}`, `superapp_payment_orders_total{stage}` and the `first_purchase` stage of
    `superapp_signup_funnel_total`, in one process's registry.

    `merchant_labels` bounds the merchant label (`ORDERS_METRICS_MERCHANT_LABELS`): the
    first that many merchants this process sees keep their id, later ones read `other`.
    """

    def __init__(self, metrics: Metrics, *, merchant_labels: int) -> None:
        funnel = metrics.counter(
            "superapp_checkout_funnel_total",
            "Checkout attempts reaching each stage of the checkout saga.",
            ["stage"],
        )
        self._stages = {stage: funnel.labels(stage.value) for stage in CheckoutStage}
        self._payment_failures = metrics.counter(
            "superapp_payment_failures_total",
            "Checkout payment steps (hold or capture) the wallet refused, by merchant and "
            "the wallet's ErrorInfo reason.",
            ["merchant", "reason"],
        )
        payment_orders = metrics.counter(
            "superapp_payment_orders_total",
            "Payment orders (a mini-app's payments) reaching each stage of their saga.",
            ["stage"],
        )
        self._payment_stages = {
            stage: payment_orders.labels(stage.value) for stage in PaymentOrderStage
        }
        self._merchants = BoundedLabels(merchant_labels)
        self._first_purchase = signup_funnel(metrics, SignupStage.FIRST_PURCHASE).labels(
            SignupStage.FIRST_PURCHASE.value
        )

    def started(self, session: AsyncSession, order: OrderRecord) -> None:
        """`order` was created in `session`'s transaction: its first attempt started."""
        if order.kind is OrderKind.PAYMENT:
            after_commit(session).count(self._payment_stages[PaymentOrderStage.STARTED])
        else:
            after_commit(session).count(self._stages[CheckoutStage.STARTED])

    def changed(
        self,
        session: AsyncSession,
        before: OrderRecord,
        after: OrderRecord,
        step: tuple[Step, Outcome, str] | None,
        *,
        first_purchase: bool,
    ) -> None:
        """`session`'s transaction changed the order from `before` to `after`, appending
        `step` (`first_purchase`: it completed the buyer's first order); counted once it
        commits."""
        if after.kind is OrderKind.PAYMENT:
            self._payment_changed(session, before, after, step, first_purchase=first_purchase)
            return
        stages = _stages(before, after, step)
        refused = step is not None and step[0] in _PAYMENT_STEPS and step[1] is Outcome.FAILED
        if not (stages or refused or first_purchase):
            return
        counts = after_commit(session)
        for stage in stages:
            counts.count(self._stages[stage])
        if refused:
            assert step is not None
            self._payment_failed(counts, after.merchant_id, step[2])
        if first_purchase:
            counts.count(self._first_purchase)

    def _payment_changed(
        self,
        session: AsyncSession,
        before: OrderRecord,
        after: OrderRecord,
        step: tuple[Step, Outcome, str] | None,
        *,
        first_purchase: bool,
    ) -> None:
        stages = _payment_stages(before, after, step)
        if not (stages or first_purchase):
            return
        counts = after_commit(session)
        for stage in stages:
            counts.count(self._payment_stages[stage])
        if first_purchase:
            counts.count(self._first_purchase)

    def _payment_failed(self, counts: AfterCommit, merchant_id: str, reason: str) -> None:
        # The label is chosen when the count is made, so a merchant only takes one of
        # the bounded places once a refusal of theirs has committed.
        def count() -> None:
            self._payment_failures.labels(self._merchants(merchant_id), reason).inc()

        counts.add(count)
