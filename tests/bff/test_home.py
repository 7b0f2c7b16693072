"""The home screen: three upstreams at once, and what is left when one is down."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import grpc
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


@contextlib.asynccontextmanager
async def hung_upstream() -> AsyncIterator[str]:
    """A gRPC server that takes every call and never answers it: a hung upstream."""

    async def never(_request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        await asyncio.Event().wait()  # until the caller's deadline cancels the call
        raise AssertionError("unreachable")

    class AnyMethod(grpc.GenericRpcHandler):
        def service(
            self, handler_call_details: grpc.HandlerCallDetails
        ) -> grpc.RpcMethodHandler[bytes, bytes]:
            return grpc.unary_unary_rpc_method_handler(never)

    server = grpc.aio.server()
    server.add_generic_rpc_handlers((AnyMethod(),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(0)


async def test_a_part_past_its_deadline_is_left_out(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    ann = await sign_up(client)
    async with hung_upstream() as wallet_addr:
        settings = platform.bff(wallet_addr=wallet_addr, home_part_timeout_seconds=0.3)
        async with (
            serving_bff(settings) as url,
            httpx.AsyncClient(base_url=url) as http,
        ):
            started = time.monotonic()
            reply = await http.get("/v1/home", headers=ann.auth)
            took = time.monotonic() - started

    assert reply.status_code == 200, reply.text
    home = reply.json()
    assert home["profile"]["user_id"] == ann.user_id
    assert home["featured_products"] is not None
    assert home["wallet"] is None
    assert home["unavailable"]["wallet"]["status"] == 504
    assert home["unavailable"]["wallet"]["reason"] == "DEADLINE_EXCEEDED"
    assert set(home["unavailable"]) == {"wallet"}
    assert 0.3 <= took < 2.0  # the part's own deadline, not the 5 s of other calls
