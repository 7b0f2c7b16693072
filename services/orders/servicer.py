"""OrdersService over gRPC: authorises, and translates proto ⇄ orders (the contract's
rules have checked each request before a handler runs)."""

from __future__ import annotations

from typing import Any

import grpc
from superapp.orders.v1 import orders_service_pb2 as pb
from superapp.orders.v1 import orders_service_pb2_grpc

from services.auth.caller import Caller, require_caller
from services.auth.roles import Role
from services.orders.checkout import Checkout, Payment, Purchase
from services.orders.messages import order_message
from services.orders.order_book import OrderBook, OrderPage
from services.orders.records import OrderRecord
from services.runtime.errors import FieldViolation, InvalidArgument, NotFound
from services.runtime.page_tokens import PageTokens
from services.runtime.validation import page_size

__all__ = ["OrdersServicer"]

Context = grpc.aio.ServicerContext[Any, Any]

_MONEY_LIMIT = 10**15


def _may_see(caller: Caller, order: OrderRecord) -> bool:
    return caller.user_id in (order.buyer_id, order.merchant_id) or caller.has_role(
        Role.ADMIN, Role.SYSTEM
    )


def _not_found(order_id: str) -> NotFound:
    return NotFound("ORDER_NOT_FOUND", "no such order", metadata={"order_id": order_id})


class OrdersServicer(orders_service_pb2_grpc.OrdersServiceServicer):
    """The orders gRPC service."""

    def __init__(self, *, checkout: Checkout, book: OrderBook, page_tokens: PageTokens) -> None:
        self._checkout = checkout
        self._book = book
        self._page_tokens = page_tokens

    def _next_token(self, page: OrderPage, scope: list[object]) -> str:
        return self._page_tokens.encode([page.next_after], scope) if page.next_after else ""

    async def CreateOrder(
        self, request: pb.CreateOrderRequest, context: Context
    ) -> pb.CreateOrderResponse:
        price = request.unit_price
        if price.amount_minor * request.quantity >= _MONEY_LIMIT:
            raise InvalidArgument(
                [
                    FieldViolation(
                        "quantity",
                        f"unit_price times quantity must be below {_MONEY_LIMIT} minor units",
                        "OUT_OF_RANGE",
                    )
                ]
            )
        order = await self._checkout.buy(
            Purchase(
                buyer_id=require_caller().user_id,
                request_id=request.request_id,
                product_id=request.product_id,
                quantity=request.quantity,
                currency_code=price.currency_code,
                unit_price_minor=price.amount_minor,
            )
        )
        return pb.CreateOrderResponse(order=order_message(order))

    async def CreatePaymentOrder(
        self, request: pb.CreatePaymentOrderRequest, context: Context
    ) -> pb.CreatePaymentOrderResponse:
        # The policy admits role system only: the buyer is the request's, not the caller.
        order = await self._checkout.pay(
            Payment(
                buyer_id=request.buyer_id,
                request_id=request.request_id,
                merchant_id=request.merchant_id,
                currency_code=request.amount.currency_code,
                amount_minor=request.amount.amount_minor,
                description=request.description,
                mini_app_id=request.mini_app_id,
                payment_request_id=request.payment_request_id,
            )
        )
        return pb.CreatePaymentOrderResponse(order=order_message(order))

    async def GetOrder(self, request: pb.GetOrderRequest, context: Context) -> pb.GetOrderResponse:
        order = await self._book.get(request.order_id)
        # The same answer for a missing order and another user's: no existence leaks.
        if order is None or not _may_see(require_caller(), order):
            raise _not_found(request.order_id)
        return pb.GetOrderResponse(order=order_message(order))

    async def ListOrders(
        self, request: pb.ListOrdersRequest, context: Context
    ) -> pb.ListOrdersResponse:
        size = page_size(request.page_size)
        require_caller().check_may_act_for(request.buyer_id)
        scope: list[object] = ["ListOrders", request.buyer_id]
        after = self._page_tokens.decode(request.page_token, scope, (str,))
        page = await self._book.page(
            buyer_id=request.buyer_id, after=str(after[0]) if after else None, size=size
        )
        return pb.ListOrdersResponse(
            orders=[order_message(order) for order in page.orders],
            next_page_token=self._next_token(page, scope),
        )

    async def ListMerchantOrders(
        self, request: pb.ListMerchantOrdersRequest, context: Context
    ) -> pb.ListMerchantOrdersResponse:
        size = page_size(request.page_size)
        require_caller().check_may_act_for(request.merchant_id)
        scope: list[object] = ["ListMerchantOrders", request.merchant_id]
        after = self._page_tokens.decode(request.page_token, scope, (str,))
        page = await self._book.page(
            merchant_id=request.merchant_id, after=str(after[0]) if after else None, size=size
        )
        return pb.ListMerchantOrdersResponse(
            orders=[order_message(order) for order in page.orders],
            next_page_token=self._next_token(page, scope),
        )
