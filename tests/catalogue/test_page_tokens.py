"""Every catalogue list RPC answers any page token it did not issue with INVALID_PAGE_TOKEN.

One catalogue per backend serves the whole module. Its listings: products in two
orders and with filters, a merchant's own drafts (read by the merchant and by an admin:
the same filters, another caller), two searches, and categories at two levels. The
property test sends each of them tokens no service issued and the genuine tokens of
the others; every one must be refused the same way, never read as another place.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from superapp.catalogue.v1 import catalogue_service_pb2 as pb
from superapp.catalogue.v1 import catalogue_service_pb2_grpc
from superapp.type.v1.money_pb2 import Money

from scripts.nats_process import NatsProcess
from services.catalogue.cursors import NewestCursor, PriceCursor, RelevanceCursor, decode_cursor
from services.runtime.errors import InvalidArgument
from services.runtime.page_tokens import PageTokens
from tests.catalogue.conftest import Metadata, Shop, running_shop
from tests.services.hostile_tokens import FUZZ, assert_refused, hostile_tokens, with_key
from tests.services.rich_errors import failure

Stub = catalogue_service_pb2_grpc.CatalogueServiceStub
_NO_ID = "00000000-0000-7000-8000-000000000000"


@dataclasses.dataclass(frozen=True)
class Listing:
    """One list RPC with fixed parameters and caller, and a genuine second-page token."""

    name: str
    method: str
    request: Message
    metadata: Metadata
    token: str = ""

    async def page(self, stub: Stub, token: str, page_size: int = 2) -> Any:
        request = type(self.request)()
        request.CopyFrom(self.request)
        request.page_token = token  # type: ignore[attr-defined]
        request.page_size = page_size  # type: ignore[attr-defined]
        return await getattr(stub, self.method)(request, metadata=self.metadata)


def _ids(method: str, reply: Any) -> list[str]:
    if method == "ListCategories":
        return [category.category_id for category in reply.categories]
    if method == "SearchProducts":
        return [result.product.product_id for result in reply.results]
    return [product.product_id for product in reply.products]


@pytest.fixture(scope="module")
async def shop(
    module_database_url: str, tmp_path_factory: pytest.TempPathFactory, nats_server: NatsProcess
) -> AsyncIterator[Shop]:
    """One catalogue per backend for the module."""
    data_dir = tmp_path_factory.mktemp("shop")
    async with running_shop(module_database_url, data_dir, TracerProvider(), nats_server.url) as it:
        yield it


@pytest.fixture(scope="module")
async def listings(shop: Shop) -> list[Listing]:
    """Every listing of the module, each longer than two items, with its token."""
    merchant_id, merchant = await shop.signed_in(merchant=True)
    home = await shop.category("Home")
    for name in ["Garden", "Kitchen", "Office"]:
        await shop.category(name)
    for name in ["Lamps", "Rugs", "Chairs"]:
        await shop.category(name, home.category_id)
    for index in range(5):
        price = Money(currency_code="USD", amount_minor=100 * (index + 1))
        await shop.product(merchant, title=f"Widget gadget {index}", price=price)
        await shop.product(merchant, title=f"Draft widget {index}", price=price, publish=False)
    drafts = pb.ListProductsRequest(
        merchant_id=merchant_id, statuses=[pb.PRODUCT_STATUS_DRAFT, pb.PRODUCT_STATUS_PUBLISHED]
    )
    found = []
    for listing in [
        Listing("newest", "ListProducts", pb.ListProductsRequest(), ()),
        Listing(
            "cheapest",
            "ListProducts",
            pb.ListProductsRequest(order_by=pb.PRODUCT_ORDER_BY_PRICE_ASCENDING),
            (),
        ),
        Listing(
            "from 2.00",
            "ListProducts",
            pb.ListProductsRequest(min_price=Money(currency_code="USD", amount_minor=200)),
            (),
        ),
        Listing("own drafts", "ListProducts", drafts, merchant),
        Listing("drafts to the admin", "ListProducts", drafts, shop.admin),
        Listing("widget", "SearchProducts", pb.SearchProductsRequest(query="widget"), ()),
        Listing("gadget", "SearchProducts", pb.SearchProductsRequest(query="gadget"), ()),
        Listing("roots", "ListCategories", pb.ListCategoriesRequest(), ()),
        Listing(
            "home",
            "ListCategories",
            pb.ListCategoriesRequest(parent_category_id=home.category_id),
            (),
        ),
    ]:
        token = (await listing.page(shop.stub, "")).next_page_token
        assert token, listing.name
        found.append(dataclasses.replace(listing, token=token))
    return found


async def test_hand_made_positions_are_refused(shop: Shop, listings: list[Listing]) -> None:
    # Each of these used to be read as another place in its listing.
    positions = {
        "newest": f'0,"{_NO_ID}"',
        "cheapest": f'"USD",0,"{_NO_ID}"',
        "own drafts": f'9223372036854775807,"{_NO_ID}"',
        "widget": f'0,"0x0.0p+0",0,"{_NO_ID}"',
        "roots": f'"{_NO_ID}"',
    }
    for listing in listings:
        if listing.name in positions:
            forged = with_key(listing.token, positions[listing.name])
            await assert_refused(listing.page(shop.stub, forged), listing.name)


async def test_a_drafts_token_is_its_callers(shop: Shop, listings: list[Listing]) -> None:
    own = next(listing for listing in listings if listing.name == "own drafts")
    _, stranger = await shop.signed_in(merchant=True)
    # Who may not list the drafts learns that first, token or not.
    for metadata, code in [
        ((), grpc.StatusCode.UNAUTHENTICATED),
        (stranger, grpc.StatusCode.PERMISSION_DENIED),
    ]:
        refusal = await failure(
            dataclasses.replace(own, metadata=metadata).page(shop.stub, own.token)
        )
        assert refusal.code == code
    # An admin may list them, but not on the merchant's token.
    admin = dataclasses.replace(own, metadata=shop.admin)
    await assert_refused(admin.page(shop.stub, own.token))
    assert (await own.page(shop.stub, own.token)).products


@FUZZ
@given(data=st.data())
async def test_tokens_it_did_not_issue_are_refused(
    shop: Shop, listings: list[Listing], data: st.DataObject
) -> None:
    target = data.draw(st.sampled_from(listings), label="listing")
    genuine = [listing.token for listing in listings]
    # Another list's, other filters', another caller's, or no one's.
    others = [token for token in genuine if token != target.token]
    token = data.draw(st.sampled_from(others) | hostile_tokens(genuine), label="token")
    await assert_refused(target.page(shop.stub, token), token)


async def test_tokens_walk_across_replicas_and_restarts(
    shop: Shop, listings: list[Listing]
) -> None:
    wholes = [_ids(it.method, await it.page(shop.stub, "", page_size=100)) for it in listings]
    firsts = [await listing.page(shop.stub, "", page_size=1) for listing in listings]
    seen = [_ids(it.method, first) for it, first in zip(listings, firsts, strict=True)]
    tokens = [first.next_page_token for first in firsts]

    async def walk(stub: Stub, pages: int | None) -> None:
        for index, listing in enumerate(listings):
            for _ in range(pages or 100):
                if not tokens[index]:
                    break
                page = await listing.page(stub, tokens[index], page_size=1)
                seen[index] += _ids(listing.method, page)
                tokens[index] = page.next_page_token

    # Another catalogue on the same database (a replica) continues what the first began...
    async with shop.replica() as replica:
        await walk(replica, pages=1)
    # ...and the first continues after a restart: the secret lives in the database.
    await shop.restart()
    await walk(shop.stub, pages=None)
    assert seen == wholes
    assert all(len(ids) > 2 for ids in seen)


_SHAPED_KEYS = {
    NewestCursor: st.tuples(st.integers(-(2**63), 2**63 - 1), st.text(max_size=64)),
    PriceCursor: st.tuples(
        st.text(max_size=64), st.integers(-(2**63), 2**63 - 1), st.text(max_size=64)
    ),
    RelevanceCursor: st.tuples(
        st.integers(-(2**63), 2**63 - 1),
        st.floats().map(float.hex) | st.text(max_size=64),
        st.integers(-(2**63), 2**63 - 1),
        st.text(max_size=64),
    ),
}


@given(data=st.data())
def test_signed_keys_that_make_no_cursor_are_refused(data: st.DataObject) -> None:
    """Keys of the right shape under the right secret (as if it leaked) still make a
    cursor or INVALID_PAGE_TOKEN: a time beyond the calendar, a relevance that is no
    fraction or a tier that does not exist is no place in a listing."""
    tokens = PageTokens(bytes(32))
    kind = data.draw(st.sampled_from(list(_SHAPED_KEYS)))
    key = data.draw(_SHAPED_KEYS[kind])
    token = tokens.encode(list(key), ["ListProducts"])
    try:
        cursor = decode_cursor(tokens, token, ["ListProducts"], kind)
    except InvalidArgument as error:
        reason = error.reason
    else:
        assert cursor is not None
        assert decode_cursor(tokens, tokens.encode(cursor.key(), ["x"]), ["x"], kind) == cursor
        reason = "a cursor"
    assert reason in {"a cursor", "INVALID_PAGE_TOKEN"}
