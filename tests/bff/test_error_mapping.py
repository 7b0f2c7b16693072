"""gRPC status → HTTP status as grpc-gateway maps them, on real upstream failures."""

from __future__ import annotations

import asyncio

import grpc
import httpx
import pytest

from bff.problems import http_status
from services.runtime.ids import new_id
from tests.bff.conftest import Platform, assert_problem, serving_bff, sign_up, wallet_of
from tests.identity.conftest import PASSWORD

# ARCHITECTURE.md's table (grpc-gateway's HTTPStatusFromCode).
DOCUMENTED = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
}


@pytest.mark.parametrize("code", list(grpc.StatusCode), ids=lambda code: code.name)
def test_every_grpc_status_has_its_documented_http_status(code: grpc.StatusCode) -> None:
    assert http_status(code) == DOCUMENTED[code]


async def test_resource_exhausted_is_429_with_the_upstream_retry_delay(
    client: httpx.AsyncClient,
) -> None:
    ann = await sign_up(client)
    wrong = {"email": ann.email, "password": "wrong password!"}
    answers = [await client.post("/v1/auth/login", json=wrong) for _ in range(4)]

    assert [a.status_code for a in answers[:3]] == [401, 401, 401]
    problem = assert_problem(answers[3], 429, "TOO_MANY_ATTEMPTS")
    assert problem["domain"] == "identity.superapp"
    assert 1 <= int(answers[3].headers["retry-after"]) <= 2  # identity blocks for 1 s here


async def test_an_upstream_that_is_down_is_503_without_internals(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    ann = await sign_up(client)
    await wallet_of(client, ann)
    await platform.wallet.stop()
    try:
        reply = await client.get("/v1/me/wallet", headers=ann.auth)
        problem = assert_problem(reply, 503, "UNAVAILABLE")
        assert problem["domain"] == "bff.superapp"
        assert "127.0.0.1" not in reply.text
        assert "ipv4" not in reply.text
        assert str(platform.wallet.settings.port) not in reply.text
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["status"] == "not_ready"
        assert ready.json()["upstreams"]["wallet"] != "SERVING"
        assert ready.json()["upstreams"]["identity"] == "SERVING"
        # Profile reads do not need the wallet.
        assert (await client.get("/v1/me", headers=ann.auth)).status_code == 200
    finally:
        await platform.wallet.start()
    # The BFF reconnects by itself within its short reconnect backoff.
    for _ in range(30):
        if (await client.get("/v1/me/wallet", headers=ann.auth)).status_code == 200:
            break
        await asyncio.sleep(0.1)
    assert (await client.get("/v1/me/wallet", headers=ann.auth)).status_code == 200
    assert (await client.get("/readyz")).json()["status"] == "ready"


async def test_an_upstream_past_its_deadline_is_504(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    ann = await sign_up(client)
    # Signing in hashes a password (argon2id, tens of milliseconds): a slow upstream call.
    async with (
        serving_bff(platform.bff(upstream_timeout_seconds=0.005)) as url,
        httpx.AsyncClient(base_url=url) as hurried,
    ):
        reply = await hurried.post(
            "/v1/auth/login", json={"email": ann.email, "password": PASSWORD}
        )
    problem = assert_problem(reply, 504, "DEADLINE_EXCEEDED")
    assert problem["domain"] == "bff.superapp"


async def test_not_found_and_unknown_routes(client: httpx.AsyncClient) -> None:
    unknown_category = await client.get(f"/v1/categories/{new_id()}")
    problem = assert_problem(unknown_category, 404, "CATEGORY_NOT_FOUND")
    assert problem["domain"] == "catalogue.superapp"
    assert_problem(await client.get("/v1/nowhere"), 404, "NOT_FOUND")
    assert_problem(await client.delete("/v1/me"), 405, "METHOD_NOT_ALLOWED")
