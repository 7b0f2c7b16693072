"""`scripts/stack --observability`: a real Prometheus scrapes every process of the stack
with the rules of deploy/observability, as an operator starts it."""

from __future__ import annotations

import asyncio
import functools
import math
import operator
import time
import uuid
from collections.abc import Callable
from typing import Any

import grpc
import httpx
import pytest
from superapp.identity.v1 import identity_service_pb2 as identity_pb
from superapp.identity.v1 import identity_service_pb2_grpc

from scripts.localstack import COMPONENTS
from tests.e2e.conftest import Stack, StackFactory

pytestmark = [pytest.mark.slow(seconds=40), pytest.mark.timeout(600)]

STARTUP_TIMEOUT = 240.0
"""Prometheus starts beside five Python processes and their relays on two shared cores."""
SCRAPED_WITHIN = 60.0
"""Scrapes come every 5 s; a loaded machine delays the first ones."""


async def _query(http: httpx.AsyncClient, stack: Stack, promql: str) -> list[dict[str, Any]]:
    reply = await http.get(f"{stack.prometheus_url}/api/v1/query", params={"query": promql})
    assert reply.status_code == 200, reply.text
    result: list[dict[str, Any]] = reply.json()["data"]["result"]
    return result


async def _until(
    http: httpx.AsyncClient, stack: Stack, promql: str, wanted: Callable[[float], bool]
) -> float:
    """The value of `promql` (one sample), once `wanted` says yes to it."""
    deadline = time.monotonic() + SCRAPED_WITHIN
    while True:
        result = await _query(http, stack, promql)
        if result and wanted(value := float(result[0]["value"][1])):
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{promql}: {result} after {SCRAPED_WITHIN}s")
        await asyncio.sleep(1.0)


async def _sign_up(http: httpx.AsyncClient, stack: Stack) -> None:
    registered = await http.post(
        f"http://{stack.address('BFF_PORT')}/v1/auth/register",
        json={
            "email": f"{uuid.uuid4()}@example.com",
            "password": "e2e password 123",
            "display_name": "Metrics",
        },
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert registered.status_code == 201, registered.text


ADMIN = "ops@example.com"
PASSWORD = "e2e password 123"
PRICE = 700


async def _account(http: httpx.AsyncClient, bff: str, email: str) -> tuple[str, str]:
    """(user id, access token) of a new account, once its wallet is open."""
    registered = await http.post(
        f"{bff}/v1/auth/register",
        json={"email": email, "password": PASSWORD, "display_name": email.split("@")[0]},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert registered.status_code == 201, registered.text
    login = await http.post(f"{bff}/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    body = login.json()
    token = body["tokens"]["access_token"]
    deadline = time.monotonic() + SCRAPED_WITHIN
    while (await http.get(f"{bff}/v1/me/wallet", headers=_bearer(token))).status_code != 200:
        assert time.monotonic() < deadline, f"no wallet for {email}"
        await asyncio.sleep(0.2)
    return body["user"]["user_id"], token


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())}


async def _buy_once_then_run_short(http: httpx.AsyncClient, stack: Stack) -> str:
    """A merchant sells a product; a buyer topped up for exactly one buys it twice: the
    first checkout completes, the second is refused for funds and compensated. Returns
    the merchant's id."""
    bff = f"http://{stack.address('BFF_PORT')}"
    _, admin = await _account(http, bff, ADMIN)
    merchant_email = f"shop-{uuid.uuid4().hex[:8]}@example.com"
    merchant_id, _ = await _account(http, bff, merchant_email)
    buyer_id, buyer = await _account(http, bff, f"buyer-{uuid.uuid4().hex[:8]}@example.com")
    async with grpc.aio.insecure_channel(stack.address("IDENTITY_PORT")) as channel:
        await identity_service_pb2_grpc.IdentityServiceStub(channel).SetUserRoles(
            identity_pb.SetUserRolesRequest(
                user_id=merchant_id,
                roles=[identity_pb.ROLE_USER, identity_pb.ROLE_MERCHANT],
                request_id=str(uuid.uuid4()),
            ),
            metadata=(("authorization", f"Bearer {admin}"),),
            timeout=30,
        )
    login = await http.post(
        f"{bff}/v1/auth/login", json={"email": merchant_email, "password": PASSWORD}
    )
    merchant = login.json()["tokens"]["access_token"]
    eur = {"currency_code": "EUR", "amount_minor": PRICE}
    created = await http.post(
        f"{bff}/v1/merchant/products",
        json={"title": "Mug", "description": "A mug.", "price": eur},
        headers=_bearer(merchant),
    )
    assert created.status_code == 201, created.text
    product_id = created.json()["product_id"]
    for path, body in (
        ("stock-adjustments", {"delta": 5, "reason": "delivery"}),
        ("publish", None),
    ):
        changed = await http.post(
            f"{bff}/v1/merchant/products/{product_id}/{path}", json=body, headers=_bearer(merchant)
        )
        assert changed.status_code == 200, changed.text
    topped = await http.post(
        f"{bff}/v1/admin/wallets/{buyer_id}/top-ups", json={"amount": eur}, headers=_bearer(admin)
    )
    assert topped.status_code == 201, topped.text
    order = {"product_id": product_id, "quantity": 1, "unit_price": eur}
    paid = await http.post(f"{bff}/v1/checkout", json=order, headers=_bearer(buyer))
    assert paid.status_code == 201, paid.text
    short = await http.post(f"{bff}/v1/checkout", json=order, headers=_bearer(buyer))
    assert (short.status_code, short.json()["reason"]) == (400, "INSUFFICIENT_FUNDS")
    return merchant_id


async def _targets_up(http: httpx.AsyncClient, stack: Stack) -> list[dict[str, Any]]:
    """Every target, once Prometheus has scraped each one successfully."""
    deadline = time.monotonic() + SCRAPED_WITHIN
    while True:
        reply = await http.get(f"{stack.prometheus_url}/api/v1/targets")
        targets: list[dict[str, Any]] = reply.json()["data"]["activeTargets"]
        if targets and all(t["health"] == "up" for t in targets):
            return targets
        if time.monotonic() > deadline:
            down = {t["labels"]["job"]: t["lastError"] for t in targets if t["health"] != "up"}
            pytest.fail(f"targets not up within {SCRAPED_WITHIN}s: {down}")
        await asyncio.sleep(1.0)


async def test_prometheus_scrapes_every_process_with_the_rules_and_sees_sign_ups(
    make_stack: StackFactory,
) -> None:
    stack = make_stack(
        args=("--observability", "--startup-timeout", str(STARTUP_TIMEOUT)),
        IDENTITY_BOOTSTRAP_ADMIN_EMAIL=ADMIN,
    ).start()
    await stack.wait_ready(within=STARTUP_TIMEOUT + 30)
    assert f"{stack.prometheus_url}/targets" in stack.stdout
    assert "prometheus" in stack.pids()
    config = stack.data_dir / "prometheus" / "prometheus.yml"
    assert config.is_file()

    async with httpx.AsyncClient(timeout=10.0) as http:
        targets = await _targets_up(http, stack)
        jobs = sorted(t["labels"]["job"] for t in targets)
        assert jobs == sorted(c.name for c in COMPONENTS)
        # Every process the banner lists serves the metrics Prometheus reads.
        for target in targets:
            assert target["scrapeUrl"] in stack.stdout

        up = await _query(http, stack, "up")
        assert {(s["metric"]["job"], s["value"][1]) for s in up} == {
            (c.name, "1") for c in COMPONENTS
        }
        builds = await _query(http, stack, "superapp_build_info")
        assert sorted((s["metric"]["job"], s["metric"]["component"]) for s in builds) == sorted(
            (c.name, c.name) for c in COMPONENTS
        )

        rules = (await http.get(f"{stack.prometheus_url}/api/v1/rules")).json()["data"]
        loaded = {rule["name"] for group in rules["groups"] for rule in group["rules"]}
        assert {"AvailabilityBudgetBurnFast", "TargetDown", "OutboxBacklogStale"} <= loaded
        broken = [
            (rule["name"], rule.get("lastError"))
            for group in rules["groups"]
            for rule in group["rules"]
            if rule["health"] == "err"
        ]
        assert broken == []
        alerts = (await http.get(f"{stack.prometheus_url}/api/v1/alerts")).json()["data"]
        assert [a for a in alerts["alerts"] if a["state"] == "firing"] == []

        # Users sign up through the BFF: Prometheus sees the requests, the funnel's first
        # two stages (identity registers, the wallet opens on the event) and the BFF's
        # availability SLI from its recording rule (a rate: it needs the counter to move
        # between two scrapes, so a second sign-up follows the first one's scrape).
        one, two = functools.partial(operator.le, 1.0), functools.partial(operator.le, 2.0)
        await _sign_up(http, stack)
        register = 'http_server_requests_total{job="bff",route="/v1/auth/register",status="201"}'
        await _until(http, stack, f"sum({register})", one)
        await _sign_up(http, stack)
        assert await _until(http, stack, f"sum({register})", two) == 2.0
        for stage in ("registered", "wallet_opened"):
            funnel = f'sum(superapp_signup_funnel_total{{stage="{stage}"}})'
            assert await _until(http, stack, funnel, two) == 2.0, stage
        failed = await _until(
            http, stack, 'job:slo_availability_errors:ratio_rate5m{job="bff"}', math.isfinite
        )
        assert failed == 0.0

        # A purchase and a payment that fails: the checkout funnel, the payment failure
        # under its merchant and reason, money moved, and the sign-up funnel's last stages.
        merchant = await _buy_once_then_run_short(http, stack)
        expected = {
            'sum(superapp_checkout_funnel_total{stage="started"})': 2.0,
            'sum(superapp_checkout_funnel_total{stage="completed"})': 1.0,
            'sum(superapp_checkout_funnel_total{stage="compensated"})': 1.0,
            f'sum(superapp_payment_failures_total{{merchant="{merchant}",'
            'reason="INSUFFICIENT_FUNDS"})': 1.0,
            'sum(superapp_signup_funnel_total{stage="first_top_up"})': 1.0,
            'sum(superapp_signup_funnel_total{stage="first_purchase"})': 1.0,
            'sum(superapp_money_moved_minor_total{kind="top_up",currency="EUR"})': PRICE,
        }
        for promql, value in expected.items():
            seen = await _until(http, stack, promql, functools.partial(operator.le, value))
            assert seen == value, promql

    stack.terminate()
    assert await stack.wait_exit() == 0
    await stack.wait_gone(stack.pids())
