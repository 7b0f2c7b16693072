"""The home screen: three upstreams at once, and what is left when one is down."""

from __future__ import annotations

import httpx

from tests.bff.conftest import (
    Platform,
    admin_session,
    assert_problem,
    available,
    merchant_session,
    product_on_sale,
    serving_bff,
    sign_up,
    top_up,
    wallet_of,
)


async def test_home_has_profile_balances_and_featured_products(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    merchant = await merchant_session(client, platform)
    newest = await product_on_sale(client, merchant, price_minor=990, stock=1)
    ann = await sign_up(client)
    admin = await admin_session(client)
    await wallet_of(client, ann)
    await top_up(client, admin, ann, 1_234)

    reply = await client.get("/v1/home", headers=ann.auth)

    assert reply.status_code == 200, reply.text
    home = reply.json()
    assert home["profile"]["user_id"] == ann.user_id
    assert available(home["wallet"]) == (1_234, 0)
    assert home["featured_products"][0]["product_id"] == newest["product_id"]
    assert home["unavailable"] == {}


async def test_home_without_the_catalogue_still_has_the_rest(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    ann = await sign_up(client)
    await wallet_of(client, ann)
    await platform.catalogue.stop()
    try:
        reply = await client.get("/v1/home", headers=ann.auth)
    finally:
        await platform.catalogue.start()

    assert reply.status_code == 200, reply.text
    home = reply.json()
    assert home["profile"]["user_id"] == ann.user_id
    assert home["wallet"]["user_id"] == ann.user_id
    assert home["featured_products"] is None
    assert home["unavailable"]["featured_products"]["status"] == 503
    assert home["unavailable"]["featured_products"]["reason"] == "UNAVAILABLE"
    assert set(home["unavailable"]) == {"featured_products"}


async def test_home_needs_a_token(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/v1/home"), 401, "UNAUTHENTICATED")


async def test_a_part_past_its_deadline_is_left_out(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    ann = await sign_up(client)
    async with (
        serving_bff(platform.bff(home_part_timeout_seconds=0.0001)) as url,
        httpx.AsyncClient(base_url=url) as hurried,
    ):
        reply = await hurried.get("/v1/home", headers=ann.auth)
        profile = await hurried.get("/v1/me", headers=ann.auth)

    assert reply.status_code == 200, reply.text
    home = reply.json()
    assert (home["profile"], home["wallet"], home["featured_products"]) == (None, None, None)
    assert {part: problem["status"] for part, problem in home["unavailable"].items()} == {
        "profile": 504,
        "wallet": 504,
        "featured_products": 504,
    }
    assert profile.status_code == 200  # only the home screen's calls are that hurried
