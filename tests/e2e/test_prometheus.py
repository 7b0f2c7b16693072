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

import httpx
import pytest

from scripts.localstack import COMPONENTS
from tests.e2e.conftest import Stack, StackFactory

pytestmark = pytest.mark.timeout(480)

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
    stack = make_stack(args=("--observability", "--startup-timeout", str(STARTUP_TIMEOUT))).start()
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
        # The integrator may extend this with a checkout: the checkout funnel's stages,
        # money moved, and superapp:signup_funnel_completion:ratio_rate1h.

    stack.terminate()
    assert await stack.wait_exit() == 0
    await stack.wait_gone(stack.pids())
