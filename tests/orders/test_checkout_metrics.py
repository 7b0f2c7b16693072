"""Orders' business metrics: the checkout funnel per attempt, payment failures by merchant
and reason, and each buyer's first purchase, counted once whatever the retries.

The platform is shared by the module's tests, so each test reads the counts it caused
as the difference from before it acted.
"""

from __future__ import annotations

import grpc
import httpx
import pytest
from superapp.orders.v1 import orders_service_pb2 as pb

from services.runtime.ids import new_id
from services.runtime.metrics import Metrics
from tests.bff.conftest import Platform
from tests.orders.conftest import metadata_of, open_shop
from tests.services.rich_errors import rich_error

STAGES = ("started", "stock_reserved", "funds_held", "completed", "compensated", "unpaid")


def _orders_metrics(platform: Platform) -> Metrics:
    assert platform.orders.running is not None
    return platform.orders.running.metrics


def _counts(metrics: Metrics) -> dict[str, float]:
    counts = {
        stage: metrics.value("superapp_checkout_funnel_total", {"stage": stage}) for stage in STAGES
    }
    counts["first_purchase"] = metrics.value(
        "superapp_signup_funnel_total", {"stage": "first_purchase"}
    )
    return counts


def _since(before: dict[str, float], metrics: Metrics) -> dict[str, float]:
    now = _counts(metrics)
    return {name: now[name] - before[name] for name in now if now[name] != before[name]}


async def test_completed_checkouts_reach_every_forward_stage_and_one_first_purchase(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    metrics = _orders_metrics(platform)
    async with open_shop(platform, client) as shop:
        buyer = metadata_of(shop.buyer)
        before = _counts(metrics)
        request = shop.create_request(1, new_id())

        first = await shop.orders.CreateOrder(request, metadata=buyer)
        replayed = await shop.orders.CreateOrder(request, metadata=buyer)  # a retry
        second = await shop.orders.CreateOrder(shop.create_request(1, new_id()), metadata=buyer)

        assert first.order.status == second.order.status == pb.ORDER_STATUS_COMPLETED
        assert replayed.order == first.order
        assert _since(before, metrics) == {
            "started": 2,
            "stock_reserved": 2,
            "funds_held": 2,
            "completed": 2,
            "first_purchase": 1,
        }
        merchant = shop.merchant.user_id
        assert (
            metrics.value(
                "superapp_payment_failures_total",
                {"merchant": merchant, "reason": "INSUFFICIENT_FUNDS"},
            )
            == 0
        )


async def test_a_checkout_the_buyer_cannot_pay_is_compensated_and_a_payment_failure(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    metrics = _orders_metrics(platform)
    async with open_shop(platform, client, price_minor=300, stock=4) as shop:
        before = _counts(metrics)

        with pytest.raises(grpc.aio.AioRpcError) as refused:
            # 4 x 300 against the buyer's 1,000.
            await shop.orders.CreateOrder(
                shop.create_request(4, new_id()), metadata=metadata_of(shop.buyer)
            )

        assert rich_error(refused.value).info.reason == "INSUFFICIENT_FUNDS"
        assert _since(before, metrics) == {"started": 1, "stock_reserved": 1, "compensated": 1}
        merchant = shop.merchant.user_id
        assert (
            metrics.value(
                "superapp_payment_failures_total",
                {"merchant": merchant, "reason": "INSUFFICIENT_FUNDS"},
            )
            == 1
        )


async def test_a_checkout_refused_at_the_reservation_only_started(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    metrics = _orders_metrics(platform)
    async with open_shop(platform, client, stock=1) as shop:
        before = _counts(metrics)

        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await shop.orders.CreateOrder(
                shop.create_request(2, new_id()), metadata=metadata_of(shop.buyer)
            )

        assert rich_error(refused.value).info.reason == "OUT_OF_STOCK"
        assert _since(before, metrics) == {"started": 1}
