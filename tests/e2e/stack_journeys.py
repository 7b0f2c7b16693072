"""What the stack tests do over the wire: a health check, a user signing up, a poll."""

from __future__ import annotations

import asyncio
import time
import uuid

import grpc
import httpx

from scripts.localstack import COMPONENTS, Readiness
from services.runtime.health_client import check_health

GRPC_COMPONENTS = [c for c in COMPONENTS if c.readiness is Readiness.GRPC_HEALTH]


async def health(address: str) -> int:
    async with grpc.aio.insecure_channel(address) as channel:
        return await check_health(channel, deadline=5.0)


async def app_signs_up_and_finds_its_wallet(bff: str) -> None:
    """The mobile app's first minute, over HTTP; the services meet on their moved ports."""
    async with httpx.AsyncClient(base_url=bff, timeout=10.0) as http:
        assert (await http.get("/readyz")).json()["status"] == "ready"
        assert (await http.get("/openapi.json")).json()["info"]["title"] == "superapp BFF"
        email = f"e2e-{uuid.uuid4()}@example.com"
        registered = await http.post(
            "/v1/auth/register",
            json={"email": email, "password": "e2e password 123", "display_name": "E2E"},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        assert registered.status_code == 201, registered.text
        login = await http.post(
            "/v1/auth/login", json={"email": email, "password": "e2e password 123"}
        )
        auth = {"Authorization": f"Bearer {login.json()['tokens']['access_token']}"}
        assert (await http.get("/v1/me", headers=auth)).json()["email"] == email
        deadline = time.monotonic() + 20.0
        while (wallet := await http.get("/v1/me/wallet", headers=auth)).status_code == 404:
            assert time.monotonic() < deadline, "the wallet never opened"
            await asyncio.sleep(0.1)
        assert wallet.status_code == 200, wallet.text
        assert wallet.json()["user_id"] == registered.json()["user_id"]
        orders = await http.get("/v1/me/orders", headers=auth)
        assert orders.json() == {"orders": [], "next_page_token": None}, orders.text
        # Orders asks the catalogue with its own token, got from identity with the
        # secret the launcher provisioned: a missing product, not a missing credential.
        missing = await http.post(
            "/v1/checkout",
            json={
                "product_id": str(uuid.uuid4()),
                "quantity": 1,
                "unit_price": {"currency_code": "EUR", "amount_minor": 100},
            },
            headers={**auth, "Idempotency-Key": str(uuid.uuid4())},
        )
        assert (missing.status_code, missing.json()["reason"]) == (404, "PRODUCT_NOT_FOUND")


async def signed_in(http: httpx.AsyncClient) -> dict[str, str]:
    email = f"e2e-{uuid.uuid4()}@example.com"
    registered = await http.post(
        "/v1/auth/register",
        json={"email": email, "password": "e2e password 123", "display_name": "E2E"},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert registered.status_code == 201, registered.text
    login = await http.post("/v1/auth/login", json={"email": email, "password": "e2e password 123"})
    return {"Authorization": f"Bearer {login.json()['tokens']['access_token']}"}


async def until_ok(http: httpx.AsyncClient, path: str, auth: dict[str, str]) -> httpx.Response:
    deadline = time.monotonic() + 30.0
    while (reply := await http.get(path, headers=auth)).status_code != 200:
        assert time.monotonic() < deadline, f"{path}: {reply.status_code} {reply.text}"
        await asyncio.sleep(0.1)
    return reply
