"""Catalogue's business metrics: reservations by outcome and stock-outs, counted once."""

from __future__ import annotations

from superapp.catalogue.v1 import catalogue_service_pb2 as pb

from services.runtime.ids import new_id
from tests.catalogue.conftest import Shop
from tests.services.rich_errors import failure


def _reservations(shop: Shop, outcome: str) -> float:
    return shop.service.metrics.value("superapp_stock_reservations_total", {"outcome": outcome})


async def test_a_reservation_that_empties_the_stock_is_one_stock_out(shop: Shop) -> None:
    _, merchant = await shop.signed_in(merchant=True)
    _, buyer = await shop.signed_in()
    product = await shop.product(merchant, stock=3)
    first = pb.ReserveStockRequest(product_id=product.product_id, quantity=1, request_id=new_id())

    await shop.stub.ReserveStock(first, metadata=buyer)
    await shop.stub.ReserveStock(first, metadata=buyer)  # a retry: replayed
    assert shop.service.metrics.value("superapp_stock_outs_total") == 0
    await shop.stub.ReserveStock(
        pb.ReserveStockRequest(product_id=product.product_id, quantity=2, request_id=new_id()),
        metadata=buyer,
    )
    refused = await failure(
        shop.stub.ReserveStock(
            pb.ReserveStockRequest(product_id=product.product_id, quantity=1, request_id=new_id()),
            metadata=buyer,
        )
    )

    assert refused.info.reason == "OUT_OF_STOCK"
    assert _reservations(shop, "reserved") == 2
    assert _reservations(shop, "out_of_stock") == 1
    assert shop.service.metrics.value("superapp_stock_outs_total") == 1


async def test_removing_the_last_available_units_is_a_stock_out(shop: Shop) -> None:
    _, merchant = await shop.signed_in(merchant=True)
    product = await shop.product(merchant, stock=2)

    await shop.stub.AdjustStock(
        pb.AdjustStockRequest(
            product_id=product.product_id, delta=-2, reason="broken", request_id=new_id()
        ),
        metadata=merchant,
    )
    await shop.stub.AdjustStock(
        pb.AdjustStockRequest(
            product_id=product.product_id, delta=5, reason="delivery", request_id=new_id()
        ),
        metadata=merchant,
    )

    assert shop.service.metrics.value("superapp_stock_outs_total") == 1
    assert _reservations(shop, "reserved") == 0
