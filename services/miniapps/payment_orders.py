"""Orders as the money path calls it: CreatePaymentOrder with miniapps' own token, and
every answer sorted into an outcome the payment request can record.

The order's key (`request_id`) is the payment request's id, so the confirming call,
a retry by the settler on any replica and a replay after a crash all reach the same
order: one payment request pays at most once. The buyer is the user the request was
made of (resolved by identity from the mini-app's token, confirmed with the user's own
token), never anyone a mini-app names.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

import grpc
from superapp.orders.v1 import orders_service_pb2 as orders_pb
from superapp.orders.v1 import orders_service_pb2_grpc
from superapp.type.v1 import money_pb2

from services.auth.service_token import ServiceToken
from services.miniapps.payment_requests import PaymentRequestRecord
from services.runtime.status_details import StatusDetails

__all__ = ["OrderOutcome", "PaymentOrders", "Settled"]

_log = logging.getLogger(__name__)

# Orders looked at the request and refused it: no money moved, none will under this key.
_REFUSALS = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.OUT_OF_RANGE,
    }
)


class OrderOutcome(enum.Enum):
    """Where the payment's order stands after one call."""

    PAID = "paid"
    """COMPLETED: the money is with the merchant."""
    REFUSED = "refused"
    """Final without payment (refused, CANCELLED or REVERSED); `reason` says why."""
    PENDING = "pending"
    """Not final yet, or unknown (orders or the wallet away): ask again later."""


@dataclass(frozen=True, slots=True)
class Settled:
    """One call's answer."""

    outcome: OrderOutcome
    order_id: str | None = None
    reason: str = ""


class PaymentOrders:
    """Places (or replays) the order of a confirmed payment request."""

    def __init__(
        self, channel: grpc.aio.Channel, token: ServiceToken, *, timeout_seconds: float
    ) -> None:
        self._stub = orders_service_pb2_grpc.OrdersServiceStub(channel)
        self._token = token
        self._timeout = timeout_seconds

    async def pay(self, request: PaymentRequestRecord) -> Settled:
        """CreatePaymentOrder for `request`, keyed by its id; what became of it."""
        asked = orders_pb.CreatePaymentOrderRequest(
            buyer_id=request.user_id,
            merchant_id=request.merchant_id,
            amount=money_pb2.Money(
                currency_code=request.currency_code, amount_minor=request.amount_minor
            ),
            description=request.description,
            request_id=request.payment_request_id,
            mini_app_id=request.mini_app_id,
            payment_request_id=request.payment_request_id,
        )
        try:
            metadata = await self._token.metadata()
        except grpc.aio.AioRpcError as error:
            # No token from identity now: nothing was asked of orders, so nothing moved.
            return Settled(OrderOutcome.PENDING, None, f"IDENTITY_{error.code().name}")
        try:
            reply = await self._stub.CreatePaymentOrder(
                asked, metadata=metadata, timeout=self._timeout
            )
        except grpc.aio.AioRpcError as error:
            return self._failed(request, error)
        order = reply.order
        if order.status == orders_pb.ORDER_STATUS_COMPLETED:
            return Settled(OrderOutcome.PAID, order.order_id)
        if order.status in (orders_pb.ORDER_STATUS_CANCELLED, orders_pb.ORDER_STATUS_REVERSED):
            reason = order.failure_reason or orders_pb.OrderStatus.Name(order.status)
            return Settled(OrderOutcome.REFUSED, order.order_id, reason)
        return Settled(OrderOutcome.PENDING, order.order_id or None)

    @staticmethod
    def _failed(request: PaymentRequestRecord, error: grpc.aio.AioRpcError) -> Settled:
        info = StatusDetails.of(error).error_info
        reason = info.reason if info is not None else error.code().name
        order_id = (info.metadata.get("order_id") if info is not None else "") or None
        if error.code() in _REFUSALS:
            return Settled(OrderOutcome.REFUSED, order_id, reason)
        if error.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
            # Our own credentials are wrong (identity does not know miniapps as a system
            # client): nothing moved; an operator must fix it, and the settler retries.
            _log.error(
                "orders refused miniapps' token for payment request %s: %s",
                request.payment_request_id,
                reason,
            )
        return Settled(OrderOutcome.PENDING, order_id, reason)
