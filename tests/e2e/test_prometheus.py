"""`scripts/stack --observability`: a real Prometheus scrapes every process of the stack
with the rules of deploy/observability, as an operator starts it."""

from __future__ import annotations

import asyncio
import time
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


async def test_prometheus_scrapes_every_process_and_loads_the_rules(
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
        # The integrator adds the business journey here once the business metrics land:
        # a sign-up and a checkout through the BFF, then the funnel's counters and ratio.

    stack.terminate()
    assert await stack.wait_exit() == 0
    await stack.wait_gone(stack.pids())
