"""Every miniapps list RPC answers any page token it did not issue with INVALID_PAGE_TOKEN.

One miniapps service per backend serves the whole module. Its listings: two
developers' own mini-apps (ListMyMiniApps); two mini-apps' versions, one of them read
by its developer and by a reviewer (ListVersions: the same mini-app, another caller);
the review queue (ListReviewQueue); and discovery with no filter, a category and a
query (ListPublishedMiniApps). The tests send each listing the others' genuine tokens,
its own with the key edited by hand, and tokens no service issued; every one must be
refused the same way: never INTERNAL, never read as another place in a list.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy import text
from superapp.miniapps.v1 import miniapps_service_pb2 as pb

from scripts.nats_process import NatsProcess
from services.database import Database
from services.runtime.page_tokens import PageTokens
from tests.miniapps.conftest import Platform, good_bundle_files, running_platform, zip_bundle
from tests.miniapps.test_lifecycle import _published, _submitted
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

# The module's first test also takes five versions through the checks, on a loaded machine.
pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
async def market(
    module_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Platform]:
    """Miniapps on each backend in turn, identity beside it, on a NATS of their own."""
    data_dir = tmp_path_factory.mktemp("listings")
    with NatsProcess(data_dir / "nats") as nats:
        async with running_platform(
            module_database_url, data_dir, TracerProvider(), nats.url
        ) as it:
            yield it


def _ids(reply: Any) -> list[str]:
    if hasattr(reply, "mini_apps"):
        return [app.mini_app_id for app in reply.mini_apps]
    return [version.version_id for version in reply.versions]


@pytest.fixture(scope="module")
async def listings(market: Platform) -> list[Listing]:
    """Every listing of the module, each two pages long at one item a page, with tokens.

    Ann's two mini-apps and Bob's "Bills B" are published (two of them in FINANCE,
    named "Bills"); "Bills A" and "Bills B" each have a second version in review.
    """
    _, ann = await market.developer()
    _, bob = await market.developer()
    _, reviewer = await market.reviewer()
    _, user = await market.person()
    apps = {}
    for developer, name, category in [
        (ann, "Bills A", pb.CATEGORY_FINANCE),
        (ann, "Food A", pb.CATEGORY_FOOD),
        (bob, "Bills B", pb.CATEGORY_FINANCE),
        (bob, "Travel B", pb.CATEGORY_TRAVEL),
    ]:
        apps[name] = (await market.registered(developer, name=name, category=category)).mini_app
    for developer, name in [(ann, "Bills A"), (ann, "Food A"), (bob, "Bills B")]:
        await _published(market, developer, reviewer, apps[name].mini_app_id, "1.0.0")
    for developer, name in [(ann, "Bills A"), (bob, "Bills B")]:
        uploaded = await market.uploaded(
            developer, apps[name].mini_app_id, zip_bundle(good_bundle_files("1.1.0"))
        )
        checked = await _submitted(market, developer, uploaded.version_id)
        assert checked.state == pb.VERSION_STATE_IN_REVIEW
    bills_a = pb.ListVersionsRequest(mini_app_id=apps["Bills A"].mini_app_id)
    return await with_tokens(
        market.stub,
        [
            Listing("ann's apps", "ListMyMiniApps", pb.ListMyMiniAppsRequest(), ann),
            Listing("bob's apps", "ListMyMiniApps", pb.ListMyMiniAppsRequest(), bob),
            Listing("Bills A's versions", "ListVersions", bills_a, ann),
            Listing("Bills A's versions to a reviewer", "ListVersions", bills_a, reviewer),
            Listing(
                "Bills B's versions",
                "ListVersions",
                pb.ListVersionsRequest(mini_app_id=apps["Bills B"].mini_app_id),
                bob,
            ),
            Listing("review queue", "ListReviewQueue", pb.ListReviewQueueRequest(), reviewer),
            Listing("published", "ListPublishedMiniApps", pb.ListPublishedMiniAppsRequest(), user),
            Listing(
                "finance",
                "ListPublishedMiniApps",
                pb.ListPublishedMiniAppsRequest(category=pb.CATEGORY_FINANCE),
                user,
            ),
            Listing(
                "bills",
                "ListPublishedMiniApps",
                pb.ListPublishedMiniAppsRequest(query="bills"),
                user,
            ),
        ],
    )


async def test_tokens_walk_their_own_listing(market: Platform, listings: list[Listing]) -> None:
    for listing in listings:
        whole = _ids(await listing.page(market.stub, "", page_size=100))
        first = await listing.page(market.stub, "")
        second = await listing.page(market.stub, listing.token)
        assert [*_ids(first), *_ids(second)] == whole[:2], listing.name
        assert len(whole) >= 2


async def test_genuine_tokens_of_other_listings_are_refused(
    market: Platform, listings: list[Listing]
) -> None:
    # Another developer's, another mini-app's, another caller's, other filters', another
    # RPC's: none continues this listing.
    await assert_each_refuses_the_others(market.stub, listings)


async def test_a_versions_token_is_its_callers(market: Platform, listings: list[Listing]) -> None:
    own = next(listing for listing in listings if listing.name == "Bills A's versions")
    # The admin may list them too (as the reviewer may), but not on the developer's token.
    admin = dataclasses.replace(own, metadata=market.admin)
    assert _ids(await admin.page(market.stub, "")) == _ids(await own.page(market.stub, ""))
    await assert_refused(admin.page(market.stub, own.token))
    assert _ids(await own.page(market.stub, own.token))


async def test_hand_made_positions_are_refused(market: Platform, listings: list[Listing]) -> None:
    await assert_forged_positions_refused(market.stub, listings)


async def test_another_listings_ids_are_no_position(
    market: Platform, listings: list[Listing]
) -> None:
    # The most tempting forgery: real ids of another listing, MAC kept; for the listings
    # keyed by (time, id), with the time of the id's own page token too.
    for listing in listings:
        for other in listings:
            if other.method != listing.method or other.token == listing.token:
                continue
            for item_id in _ids(await other.page(market.stub, "", page_size=100)):
                keys = [f'"{item_id}"', f'0,"{item_id}"', f'1,"{item_id}"']
                for key in keys:
                    forged = with_key(listing.token, key)
                    # The same mini-app read by another caller has the same ids: a key
                    # that makes the genuine token again is no forgery.
                    if forged != listing.token:
                        await assert_refused(listing.page(market.stub, forged), key)


async def _page_token_secret(market: Platform) -> bytes:
    """The service's page-token secret, as a thief with its database would read it."""
    database = Database.connect(market.settings.database_url)
    try:
        async with database.read() as session:
            query = text("SELECT value FROM service_secrets WHERE name = 'page_tokens'")
            secret: bytes = (await session.execute(query)).scalar_one()
    finally:
        await database.dispose()
    return bytes(secret)


async def test_signed_times_beyond_the_calendar_are_refused(
    market: Platform, listings: list[Listing]
) -> None:
    """Keys of the right shape signed with the service's own secret (as if it leaked)
    that are no time a datetime can hold are still INVALID_PAGE_TOKEN, never INTERNAL."""
    tokens = PageTokens(await _page_token_secret(market))
    scopes: dict[str, list[object]] = {
        "review queue": ["ListReviewQueue"],
        "published": ["ListPublishedMiniApps", None, ""],
    }
    for listing in listings:
        if listing.name not in scopes:
            continue
        scope = scopes[listing.name]
        key = json.loads(base64.urlsafe_b64decode(listing.token.partition(".")[0] + "=="))
        # The forger's scope and secret are right: re-signing the genuine key makes the
        # genuine token...
        assert tokens.encode(key, scope) == listing.token
        # ...yet a time before year 1 or after year 9999 is no place in a listing.
        for micros in [-(2**63), -62135596800000001, 253402300800000000, 2**63 - 1]:
            forged = tokens.encode([micros, key[1]], scope)
            await assert_refused(listing.page(market.stub, forged), f"{listing.name}: {micros}")
        # The first and last instants a datetime holds are places in the listing: one
        # before everything, one after (which is which depends on the listing's order).
        pages = [
            _ids(await listing.page(market.stub, tokens.encode([micros, key[1]], scope), 100))
            for micros in [-62135596800000000, 253402300799999999]
        ]
        assert sorted(map(bool, pages)) == [False, True], listing.name


@FUZZ_FEW
@given(data=st.data())
async def test_tokens_it_did_not_issue_are_refused(
    market: Platform, listings: list[Listing], data: st.DataObject
) -> None:
    await assert_refuses_a_drawn_token(market.stub, listings, data)
