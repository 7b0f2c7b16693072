"""The home screen: three upstreams at once, and what is left when one is down."""

from __future__ import annotations

import httpx

from scripts.benchmark.stubborn import hung_upstream
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
    """The wallet takes the call and never answers. Every other upstream call may take
    ten minutes here, so only the part's own deadline (2 s) can end the request in time;
    the client waits 60 s, ample for the healthy parts on a busy machine. How long the
    request takes is the bench's to measure (`scripts/bench --only bff.GET /v1/home`)."""
    ann = await sign_up(client)
    async with hung_upstream() as wallet_addr:
        settings = platform.bff(
            wallet_addr=wallet_addr, home_part_timeout_seconds=2, upstream_timeout_seconds=600
        )
        async with (
            serving_bff(settings) as url,
            httpx.AsyncClient(base_url=url, timeout=60) as http,
        ):
            reply = await http.get("/v1/home", headers=ann.auth)

    assert reply.status_code == 200, reply.text
    home = reply.json()
    assert home["profile"]["user_id"] == ann.user_id
    assert home["featured_products"] is not None
    assert home["wallet"] is None
    assert home["unavailable"]["wallet"]["status"] == 504
    assert home["unavailable"]["wallet"]["reason"] == "DEADLINE_EXCEEDED"
    assert set(home["unavailable"]) == {"wallet"}
