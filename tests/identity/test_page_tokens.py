"""ListMyGrants answers any page token it did not issue with INVALID_PAGE_TOKEN.

One identity per backend (with miniapps beside it, to publish the mini-apps users
consent to) serves the whole module. Two users each hold grants to the same two
mini-apps, so each one's grants are two pages long. The tests send each user's listing
the other's genuine token, its own with the key edited by hand (the other user's grant
ids among them), and tokens no service issued; every one must be refused the same way:
never INTERNAL, never read as another place in the list.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from superapp.identity.v1 import identity_service_pb2 as pb

from scripts.nats_process import NatsProcess
from tests.identity.test_miniapp_oauth import Stack, running_stack
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

# The module's first test also publishes two mini-apps through the checks and review.
pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
async def stack(
    module_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    """Identity on each backend in turn, miniapps beside it, on a NATS of their own (so
    no other module's identity consumes these mini-apps' events)."""
    data_dir = tmp_path_factory.mktemp("grants")
    with NatsProcess(data_dir / "nats") as nats:
        async with running_stack(module_database_url, data_dir, TracerProvider(), nats.url) as it:
            yield it


@pytest.fixture(scope="module")
async def listings(stack: Stack) -> list[Listing]:
    """Two users' grants, each to the same two mini-apps, with their tokens."""
    apps = [await stack.published(), await stack.published()]
    found = []
    for name in ["ann", "bob"]:
        _, user = await stack.platform.person()
        for app in apps:
            await stack.token(user, app)
        found.append(Listing(name, "ListMyGrants", pb.ListMyGrantsRequest(), user))
    return await with_tokens(stack.identity, found)


async def test_tokens_walk_their_own_listing(stack: Stack, listings: list[Listing]) -> None:
    for listing in listings:
        whole = await listing.page(stack.identity, "", page_size=100)
        first = await listing.page(stack.identity, "")
        second = await listing.page(stack.identity, listing.token)
        assert [g.grant_id for g in [*first.grants, *second.grants]] == [
            g.grant_id for g in whole.grants
        ], listing.name
        assert len(whole.grants) == 2
        assert second.next_page_token == ""


async def test_genuine_tokens_of_other_users_are_refused(
    stack: Stack, listings: list[Listing]
) -> None:
    await assert_each_refuses_the_others(stack.identity, listings)


async def test_hand_made_positions_are_refused(stack: Stack, listings: list[Listing]) -> None:
    await assert_forged_positions_refused(stack.identity, listings)


async def test_another_users_grant_id_is_no_position(stack: Stack, listings: list[Listing]) -> None:
    # The most tempting forgery: a real grant id of the other user's list, MAC kept.
    ann, bob = listings
    for grant in (await bob.page(stack.identity, "", page_size=100)).grants:
        forged = with_key(ann.token, f'"{grant.grant_id}"')
        await assert_refused(ann.page(stack.identity, forged), grant.grant_id)


@FUZZ_FEW
@given(data=st.data())
async def test_tokens_it_did_not_issue_are_refused(
    stack: Stack, listings: list[Listing], data: st.DataObject
) -> None:
    await assert_refuses_a_drawn_token(stack.identity, listings, data)
