"""Orders' list RPCs answer any page token they did not issue with INVALID_PAGE_TOKEN.

One platform per backend serves the whole module (orders' own database is the
parametrised one). Its listings: two buyers' orders (ListOrders) and two merchants'
sales (ListMerchantOrders), each two pages long. The tests send each listing the
others' genuine tokens, its own with the key edited by hand, and tokens no service
issued; every one must be refused the same way: never INTERNAL, never read as another
place in a list.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from superapp.orders.v1 import orders_service_pb2 as pb

from services.runtime.ids import new_id
from tests.bff.conftest import Platform
from tests.orders.conftest import Shop, metadata_of, open_shop
from tests.services.hostile_tokens import (
    FUZZ_FEW,
    Listing,
    assert_each_refuses_the_others,
    assert_forged_positions_refused,
    assert_refused,
    assert_refuses_a_drawn_token,
    with_key,
    with_tokens,
)

# The module's first test also builds the platform and its orders, on a loaded machine.
pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
async def shops(platform: Platform) -> AsyncIterator[list[Shop]]:
    """Two merchants, each with a buyer who bought from them twice."""
    async with (
        platform.client() as http,
        open_shop(platform, http, price_minor=100, stock=10) as first,
        open_shop(platform, http, price_minor=100, stock=10) as second,
    ):
        for shop in (first, second):
            for _ in range(2):
                await _bought(shop)
        yield [first, second]


async def _bought(shop: Shop) -> pb.Order:
    """One unit bought, retried with the same request id while the order is ABORTED
    `ORDER_IN_PROGRESS` (on a loaded machine the reconciler may take it over mid-call)."""
    reply = await shop.buy(shop.create_request(1, new_id()))
    assert reply.order.status == pb.ORDER_STATUS_COMPLETED
    return reply.order


@pytest.fixture(scope="module")
async def listings(shops: list[Shop]) -> list[Listing]:
    """Each buyer's orders and each merchant's sales, read by their owner, with tokens."""
    found = []
    for index, shop in enumerate(shops):
        buyer, merchant = shop.buyer, shop.merchant
        found += [
            Listing(
                f"buyer {index}",
                "ListOrders",
                pb.ListOrdersRequest(buyer_id=buyer.user_id),
                metadata_of(buyer),
            ),
            Listing(
                f"merchant {index}",
                "ListMerchantOrders",
                pb.ListMerchantOrdersRequest(merchant_id=merchant.user_id),
                metadata_of(merchant),
            ),
        ]
    return await with_tokens(shops[0].orders, found)


async def test_tokens_walk_their_own_listing(shops: list[Shop], listings: list[Listing]) -> None:
    stub = shops[0].orders
    for listing in listings:
        whole = await listing.page(stub, "", page_size=100)
        first = await listing.page(stub, "")
        second = await listing.page(stub, listing.token)
        assert [o.order_id for o in [*first.orders, *second.orders]] == [
            o.order_id for o in whole.orders
        ], listing.name
        assert len(whole.orders) == 2
        assert second.next_page_token == ""


async def test_genuine_tokens_of_other_listings_are_refused(
    shops: list[Shop], listings: list[Listing]
) -> None:
    # Another buyer's orders, another merchant's sales, and the same user's other list.
    await assert_each_refuses_the_others(shops[0].orders, listings)


async def test_hand_made_positions_are_refused(shops: list[Shop], listings: list[Listing]) -> None:
    await assert_forged_positions_refused(shops[0].orders, listings)


async def test_another_buyers_order_id_is_no_position(
    shops: list[Shop], listings: list[Listing]
) -> None:
    # The most tempting forgery: a real order id of someone else's list, MAC kept.
    stub = shops[0].orders
    theirs = (await listings[2].page(stub, "", page_size=100)).orders
    for order in theirs:
        forged = with_key(listings[0].token, f'"{order.order_id}"')
        await assert_refused(listings[0].page(stub, forged), order.order_id)


@FUZZ_FEW
@given(data=st.data())
async def test_tokens_it_did_not_issue_are_refused(
    shops: list[Shop], listings: list[Listing], data: st.DataObject
) -> None:
    await assert_refuses_a_drawn_token(shops[0].orders, listings, data)
