"""Stock reservations never oversell, and every way out of a reservation restores the sums."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import grpc
from google.protobuf.duration_pb2 import Duration
from superapp.catalogue.v1 import catalogue_service_pb2 as pb
from superapp.catalogue.v1 import events_pb2

from services.runtime.ids import new_id
from tests.catalogue.conftest import Shop
from tests.services.rich_errors import failure


def _reserve(
    product_id: str, quantity: int = 1, ttl: Duration | None = None
) -> pb.ReserveStockRequest:
    request = pb.ReserveStockRequest(product_id=product_id, quantity=quantity, request_id=new_id())
    if ttl is not None:
        request.ttl.CopyFrom(ttl)
    return request


def _sums(stock: pb.Stock) -> tuple[int, int, int]:
    return stock.stocked_quantity, stock.reserved_quantity, stock.available_quantity


async def test_a_hundred_buyers_race_for_ten_units(shop: Shop) -> None:
    _, merchant = await shop.signed_in(merchant=True)
    product = await shop.product(merchant, stock=10)
    buyers = [(await shop.signed_in())[1] for _ in range(4)]

    async def attempt(index: int) -> pb.Reservation | grpc.aio.AioRpcError:
        try:
            reply = await shop.stub.ReserveStock(
                _reserve(product.product_id), metadata=buyers[index % len(buyers)]
            )
        except grpc.aio.AioRpcError as error:
            return error
        return reply.reservation

    outcomes = await asyncio.gather(*(attempt(i) for i in range(100)))
    won = [o for o in outcomes if isinstance(o, pb.Reservation)]
    lost = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    assert len(won) == 10
    assert len(lost) == 90
    for error in lost:
        refusal = await failure(_raise(error))
        assert refusal.code == grpc.StatusCode.FAILED_PRECONDITION
        assert refusal.info.reason == "OUT_OF_STOCK"
        assert refusal.info.metadata["product_id"] == product.product_id
        assert refusal.info.metadata["available_quantity"] == "0"
    assert _sums(await shop.stock(product.product_id, merchant)) == (10, 10, 0)
    depleted = await shop.events("superapp.catalogue.stock.depleted")
    assert len(depleted) == 1
    assert _sums(events_pb2.ProductOutOfStock.FromString(depleted[0]).stock) == (10, 10, 0)
    assert len(await shop.events("superapp.catalogue.stock.reserved")) == 10

    # Commit three: sold, so they leave stocked and reserved alike.
    by_owner = {
        r.reservation_id: buyers[i % len(buyers)]
        for i, r in enumerate(outcomes)
        if isinstance(r, pb.Reservation)
    }
    for reservation in won[:3]:
        committed = await shop.stub.CommitReservation(
            pb.CommitReservationRequest(
                reservation_id=reservation.reservation_id, request_id=new_id()
            ),
            metadata=by_owner[reservation.reservation_id],
        )
        assert committed.reservation.status == pb.RESERVATION_STATUS_COMMITTED
        assert committed.reservation.HasField("resolve_time")
    assert _sums(await shop.stock(product.product_id, merchant)) == (7, 7, 0)

    # Release three: back to available.
    for reservation in won[3:6]:
        await shop.stub.ReleaseReservation(
            pb.ReleaseReservationRequest(
                reservation_id=reservation.reservation_id, request_id=new_id()
            ),
            metadata=by_owner[reservation.reservation_id],
        )
    assert _sums(await shop.stock(product.product_id, merchant)) == (7, 4, 3)

    # Three more, held for a minute: nothing left, until they expire by themselves.
    brief = [
        (
            await shop.stub.ReserveStock(
                _reserve(product.product_id, ttl=Duration(seconds=60)), metadata=buyers[0]
            )
        ).reservation
        for _ in range(3)
    ]
    assert _sums(await shop.stock(product.product_id, merchant)) == (7, 7, 0)
    assert len(await shop.events("superapp.catalogue.stock.depleted")) == 2
    # Catalogue's clock jumps past them: however slow the machine, they had not expired.
    shop.clock.advance(timedelta(seconds=61))
    # The units are back at expire_time, whether or not the sweeper has run yet.
    assert _sums(await shop.stock(product.product_id, merchant)) == (7, 4, 3)
    seen = await shop.stub.GetReservation(
        pb.GetReservationRequest(reservation_id=brief[0].reservation_id), metadata=buyers[0]
    )
    assert seen.reservation.status == pb.RESERVATION_STATUS_EXPIRED
    assert seen.reservation.resolve_time == brief[0].expire_time
    late = await failure(
        shop.stub.CommitReservation(
            pb.CommitReservationRequest(
                reservation_id=brief[0].reservation_id, request_id=new_id()
            ),
            metadata=buyers[0],
        )
    )
    assert (late.code, late.info.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "RESERVATION_EXPIRED",
    )
    assert late.info.metadata["expire_time"] == brief[0].expire_time.ToJsonString()

    # The sweeper records the expiries and announces them.
    released: list[events_pb2.StockReleased] = []
    for _ in range(100):
        released = [
            events_pb2.StockReleased.FromString(payload)
            for payload in await shop.events("superapp.catalogue.stock.released")
        ]
        if len(released) == 6:
            break
        await asyncio.sleep(0.05)
    reasons = sorted(event.reason for event in released)
    assert (
        reasons
        == [events_pb2.STOCK_RELEASE_REASON_RELEASED] * 3
        + [events_pb2.STOCK_RELEASE_REASON_EXPIRED] * 3
    )
    assert _sums(released[-1].stock) == (7, 4, 3)
    # Four reservations are still pending: exactly four units can be sold or held.
    assert _sums(await shop.stock(product.product_id, merchant)) == (7, 4, 3)
    refused = await failure(
        shop.stub.ReserveStock(_reserve(product.product_id, quantity=4), metadata=buyers[1])
    )
    assert (refused.info.reason, refused.info.metadata["requested_quantity"]) == (
        "OUT_OF_STOCK",
        "4",
    )
    await shop.stub.ReserveStock(_reserve(product.product_id, quantity=3), metadata=buyers[1])
    assert _sums(await shop.stock(product.product_id, merchant)) == (7, 7, 0)


async def _raise(error: grpc.aio.AioRpcError) -> None:
    raise error


async def test_a_reservation_is_its_owners_and_resolves_once(shop: Shop) -> None:
    _, merchant = await shop.signed_in(merchant=True)
    product = await shop.product(merchant, stock=5)
    _, ann = await shop.signed_in()
    _, bob = await shop.signed_in()
    reservation = (
        await shop.stub.ReserveStock(_reserve(product.product_id, 2), metadata=ann)
    ).reservation
    assert (reservation.status, reservation.quantity) == (pb.RESERVATION_STATUS_PENDING, 2)
    assert reservation.expire_time.seconds - reservation.create_time.seconds == 15 * 60

    get = pb.GetReservationRequest(reservation_id=reservation.reservation_id)
    for stranger in (bob, merchant):
        hidden = await failure(shop.stub.GetReservation(get, metadata=stranger))
        assert (hidden.code, hidden.info.reason) == (
            grpc.StatusCode.NOT_FOUND,
            "RESERVATION_NOT_FOUND",
        )
        hidden = await failure(
            shop.stub.ReleaseReservation(
                pb.ReleaseReservationRequest(
                    reservation_id=reservation.reservation_id, request_id=new_id()
                ),
                metadata=stranger,
            )
        )
        assert hidden.info.reason == "RESERVATION_NOT_FOUND"
    assert (await shop.stub.GetReservation(get, metadata=shop.admin)).reservation == reservation

    commit = pb.CommitReservationRequest(
        reservation_id=reservation.reservation_id, request_id=new_id()
    )
    first = await shop.stub.CommitReservation(commit, metadata=ann)
    # The same request again replays; a new request finds it resolved.
    assert await shop.stub.CommitReservation(commit, metadata=ann) == first
    again = await failure(
        shop.stub.ReleaseReservation(
            pb.ReleaseReservationRequest(
                reservation_id=reservation.reservation_id, request_id=new_id()
            ),
            metadata=ann,
        )
    )
    assert (again.code, again.info.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "RESERVATION_ALREADY_RESOLVED",
    )
    assert again.info.metadata["status"] == "RESERVATION_STATUS_COMMITTED"
    assert _sums(await shop.stock(product.product_id, merchant)) == (3, 0, 3)
    [committed] = await shop.events("superapp.catalogue.stock.committed")
    event = events_pb2.StockCommitted.FromString(committed)
    assert (event.reservation_id, event.quantity, event.merchant_id) == (
        reservation.reservation_id,
        2,
        product.merchant_id,
    )
    assert _sums(event.stock) == (3, 0, 3)


async def test_only_published_products_can_be_reserved(shop: Shop) -> None:
    _, merchant = await shop.signed_in(merchant=True)
    _, shopper = await shop.signed_in()
    draft = await shop.product(merchant, publish=False, stock=3)
    hidden = await failure(shop.stub.ReserveStock(_reserve(draft.product_id), metadata=shopper))
    assert (hidden.code, hidden.info.reason) == (grpc.StatusCode.NOT_FOUND, "PRODUCT_NOT_FOUND")
    own = await failure(shop.stub.ReserveStock(_reserve(draft.product_id), metadata=merchant))
    assert (own.code, own.info.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "PRODUCT_NOT_PUBLISHED",
    )
    assert own.info.metadata["current_status"] == "PRODUCT_STATUS_DRAFT"
    missing = await failure(shop.stub.ReserveStock(_reserve(new_id()), metadata=shopper))
    assert missing.info.reason == "PRODUCT_NOT_FOUND"
    assert _sums(await shop.stock(draft.product_id, merchant)) == (3, 0, 3)


async def test_bad_reservation_requests_name_their_fields(shop: Shop) -> None:
    _, shopper = await shop.signed_in()
    product_id = new_id()
    cases = [
        (_reserve("nope"), "product_id"),
        (_reserve(product_id, quantity=0), "quantity"),
        (_reserve(product_id, quantity=1001), "quantity"),
        (_reserve(product_id, ttl=Duration(seconds=0)), "ttl"),
        (_reserve(product_id, ttl=Duration(seconds=-5)), "ttl"),
        (_reserve(product_id, ttl=Duration(seconds=3601)), "ttl"),
        (pb.ReserveStockRequest(product_id=product_id, quantity=1), "request_id"),
    ]
    for request, field in cases:
        error = await failure(shop.stub.ReserveStock(request, metadata=shopper))
        assert (error.code, error.info.reason) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_ARGUMENT",
        )
        assert list(error.violations) == [field], request
    anonymous = await failure(shop.stub.ReserveStock(_reserve(product_id)))
    assert anonymous.code == grpc.StatusCode.UNAUTHENTICATED


async def test_stock_adjustments_belong_to_the_merchant_and_keep_reserved_units(
    shop: Shop,
) -> None:
    _, merchant = await shop.signed_in(merchant=True)
    _, rival = await shop.signed_in(merchant=True)
    _, shopper = await shop.signed_in()
    product = await shop.product(merchant, stock=5)

    def adjust(delta: int, request_id: str = "") -> pb.AdjustStockRequest:
        return pb.AdjustStockRequest(
            product_id=product.product_id,
            delta=delta,
            reason="stock count",
            request_id=request_id or new_id(),
        )

    for stranger in (rival, shopper):
        denied = await failure(shop.stub.AdjustStock(adjust(1), metadata=stranger))
        assert (denied.code, denied.info.reason) == (
            grpc.StatusCode.PERMISSION_DENIED,
            "PERMISSION_DENIED",
        )
    await shop.stub.ReserveStock(_reserve(product.product_id, 2), metadata=shopper)
    below = await failure(shop.stub.AdjustStock(adjust(-4), metadata=merchant))
    assert (below.code, below.info.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "STOCK_BELOW_RESERVED",
    )
    assert dict(below.info.metadata) == {
        "product_id": product.product_id,
        "delta": "-4",
        "stocked_quantity": "5",
        "reserved_quantity": "2",
    }
    # Down to exactly the reserved units: out of stock, announced once.
    key = new_id()
    reply = await shop.stub.AdjustStock(adjust(-3, key), metadata=merchant)
    assert _sums(reply.stock) == (2, 2, 0)
    assert await shop.stub.AdjustStock(adjust(-3, key), metadata=merchant) == reply
    reused = await failure(shop.stub.AdjustStock(adjust(-2, key), metadata=merchant))
    assert reused.info.reason == "IDEMPOTENCY_KEY_REUSED"
    [depleted] = await shop.events("superapp.catalogue.stock.depleted")
    assert events_pb2.ProductOutOfStock.FromString(depleted).product_id == product.product_id
    # An admin may adjust any product.
    admin_reply = await shop.stub.AdjustStock(adjust(10), metadata=shop.admin)
    assert _sums(admin_reply.stock) == (12, 2, 10)

    for delta, reason, field in [
        (0, "x", "delta"),
        (10**9 + 1, "x", "delta"),
        (1, "", "reason"),
        (1, "x" * 501, "reason"),
    ]:
        request = pb.AdjustStockRequest(
            product_id=product.product_id, delta=delta, reason=reason, request_id=new_id()
        )
        error = await failure(shop.stub.AdjustStock(request, metadata=merchant))
        assert (error.code, list(error.violations)) == (grpc.StatusCode.INVALID_ARGUMENT, [field])


async def test_drafts_stock_is_hidden_from_other_merchants(shop: Shop) -> None:
    _, merchant = await shop.signed_in(merchant=True)
    _, rival = await shop.signed_in(merchant=True)
    draft = await shop.product(merchant, publish=False)
    hidden = await failure(
        shop.stub.AdjustStock(
            pb.AdjustStockRequest(
                product_id=draft.product_id, delta=5, reason="x", request_id=new_id()
            ),
            metadata=rival,
        )
    )
    assert (hidden.code, hidden.info.reason) == (grpc.StatusCode.NOT_FOUND, "PRODUCT_NOT_FOUND")
