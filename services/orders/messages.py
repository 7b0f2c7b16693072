"""Orders as the contract shows them: `OrderRecord` → `superapp.orders.v1.Order`."""

from __future__ import annotations

from superapp.orders.v1 import orders_service_pb2 as pb
from superapp.type.v1.money_pb2 import Money

from services.orders.records import OrderKind, OrderRecord, OrderStatus, Outcome, StepRecord
from services.runtime.proto_time import to_timestamp

__all__ = ["order_message"]

_STATUSES = {
    OrderStatus.PENDING: pb.ORDER_STATUS_PENDING,
    OrderStatus.PAYMENT_PENDING: pb.ORDER_STATUS_PAYMENT_PENDING,
    OrderStatus.COMPLETED: pb.ORDER_STATUS_COMPLETED,
    OrderStatus.CANCELLED: pb.ORDER_STATUS_CANCELLED,
    OrderStatus.REVERSED: pb.ORDER_STATUS_REVERSED,
}
_OUTCOMES = {
    Outcome.SUCCEEDED: pb.STEP_OUTCOME_SUCCEEDED,
    Outcome.FAILED: pb.STEP_OUTCOME_FAILED,
    Outcome.INTERRUPTED: pb.STEP_OUTCOME_INTERRUPTED,
}


def _step(step: StepRecord) -> pb.OrderStep:
    return pb.OrderStep(
        name=step.name.value,
        outcome=_OUTCOMES[step.outcome],
        time=to_timestamp(step.time),
        reason=step.reason,
        attempt=step.attempt,
    )


def _items(order: OrderRecord) -> list[pb.OrderItem]:
    if order.kind is not OrderKind.PRODUCT:
        return []  # a payment buys no product: its `description` says what it pays for
    price = Money(currency_code=order.currency_code, amount_minor=order.unit_price_minor)
    return [
        pb.OrderItem(
            product_id=order.product_id,
            title=order.title,
            quantity=order.quantity,
            unit_price=price,
        )
    ]


def order_message(order: OrderRecord) -> pb.Order:
    """The order as `Order`."""
    return pb.Order(
        order_id=order.order_id,
        buyer_id=order.buyer_id,
        merchant_id=order.merchant_id,
        items=_items(order),
        total=Money(currency_code=order.currency_code, amount_minor=order.total_minor),
        status=_STATUSES[order.status],
        failure_reason=order.failure_reason,
        timeline=[_step(step) for step in order.timeline],
        reservation_id=order.reservation_id or "",
        hold_id=order.hold_id or "",
        transaction_id=order.transaction_id or "",
        attempt=order.attempt,
        create_time=to_timestamp(order.create_time),
        update_time=to_timestamp(order.update_time),
        request_id=order.request_id,
        description=order.description,
        mini_app_id=order.mini_app_id or "",
        payment_request_id=order.payment_request_id or "",
    )
