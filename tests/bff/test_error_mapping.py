"""gRPC status → HTTP status as grpc-gateway maps them, on real upstream failures; and the
HTTP layer's own answers: 405 with every allowed method, 422 for a reused key, bad JSON."""

from __future__ import annotations

import asyncio

import grpc
import httpx
import pytest

from bff.openapi import OPENAPI_PATH
from bff.problems import http_status
from services.runtime.ids import new_id
from tests.bff.conftest import (
    Platform,
    admin_session,
    assert_problem,
    serving_bff,
    sign_up,
    top_up,
    wallet_of,
)
from tests.conftest import http_client
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
        # Still ready to serve: only the routes that need the wallet answer 503.
        assert ready.status_code == 200
        assert ready.json()["status"] == "degraded"
        assert ready.json()["upstreams"]["wallet"] != "SERVING"
        assert ready.json()["upstreams"]["identity"] == "SERVING"
        # Profile reads do not need the wallet.
        assert (await client.get("/v1/me", headers=ann.auth)).status_code == 200
    finally:
        await platform.wallet.start()
    # The BFF reconnects by itself, its reconnect backoff capped at 2 s; the wait is
    # bounded well past that, for a wallet slow to come back on a busy machine.
    for _ in range(300):
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
        http_client(url) as hurried,
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


async def test_a_405_allows_every_method_the_path_serves(client: httpx.AsyncClient) -> None:
    reply = await client.delete("/v1/me")
    assert_problem(reply, 405, "METHOD_NOT_ALLOWED")
    assert reply.headers["allow"] == "GET, PATCH"

    document = (await client.get(OPENAPI_PATH)).json()
    for path, item in document["paths"].items():
        served = {method.upper() for method in item}
        unserved = next(m for m in ("DELETE", "PUT", "PATCH", "POST") if m not in served)
        url = path.replace("{product_id}", new_id()).replace("{category_id}", new_id())
        url = url.replace("{user_id}", new_id())
        reply = await client.request(unserved, url)
        assert_problem(reply, 405, "METHOD_NOT_ALLOWED")
        assert set(reply.headers["allow"].split(", ")) == served, (unserved, path)


async def test_a_query_parameter_the_route_does_not_have_is_named_not_ignored(
    client: httpx.AsyncClient,
) -> None:
    # A misspelt page size would otherwise quietly give the default page.
    reply = await client.get("/v1/products", params={"page_sise": "3", "page_size": "3"})
    problem = assert_problem(reply, 400, "INVALID_ARGUMENT")
    assert problem["violations"] == [
        {
            "field": "page_sise",
            "description": "is not a parameter of this operation",
            "reason": "UNKNOWN_PARAMETER",
        }
    ]
    assert (await client.get("/v1/products", params={"page_size": "3"})).status_code == 200


async def test_a_body_that_is_not_json_is_named_as_the_body(client: httpx.AsyncClient) -> None:
    for broken in (b'{"email": "a@example.com",', b"\xff\xfe", b"{'email': 1}"):
        reply = await client.post(
            "/v1/auth/login", content=broken, headers={"content-type": "application/json"}
        )
        problem = assert_problem(reply, 400, "INVALID_ARGUMENT")
        [violation] = problem["violations"]
        assert violation["field"] == "body", problem
        assert violation["reason"] == "MALFORMED_JSON"
        assert violation["description"].startswith("is not valid JSON")
        assert problem["detail"].startswith("body: is not valid JSON")

    # Other invalid input keeps naming its field.
    missing = await client.post("/v1/auth/login", json={"email": "a@example.com"})
    problem = assert_problem(missing, 400, "INVALID_ARGUMENT")
    assert [(v["field"], v["reason"]) for v in problem["violations"]] == [("password", "MISSING")]


async def test_a_key_reused_with_another_body_is_422_without_internal_ids(
    client: httpx.AsyncClient,
) -> None:
    ann = await sign_up(client, "ann")
    bob = await sign_up(client, "bob")
    admin = await admin_session(client)
    await wallet_of(client, ann)
    await top_up(client, admin, ann, 1_000)
    key = f"transfer-{new_id()}"

    def transfer(amount_minor: int) -> dict[str, object]:
        return {
            "to_user_id": bob.user_id,
            "amount": {"currency_code": "EUR", "amount_minor": amount_minor},
        }

    first = await client.post(
        "/v1/me/wallet/transfers", json=transfer(100), headers=ann.writing(key)
    )
    again = await client.post(
        "/v1/me/wallet/transfers", json=transfer(100), headers=ann.writing(key)
    )
    other = await client.post(
        "/v1/me/wallet/transfers", json=transfer(200), headers=ann.writing(key)
    )

    assert first.status_code == 201, first.text
    assert again.json() == first.json()
    problem = assert_problem(other, 422, "IDEMPOTENCY_KEY_REUSED")
    assert problem["domain"] == "wallet.superapp"
    assert problem["metadata"] == {}
    assert "request_id" not in other.text
    assert "Idempotency-Key" in problem["detail"]


async def test_a_currency_without_a_price_bound_is_still_checked(
    client: httpx.AsyncClient,
) -> None:
    unknown = await client.get("/v1/products", params={"currency_code": "AAA"})
    problem = assert_problem(unknown, 400, "INVALID_CURRENCY")
    assert [v["field"] for v in problem["violations"]] == ["currency_code"]
    assert (await client.get("/v1/products", params={"currency_code": "EUR"})).status_code == 200
