"""A real short bench run of the opt-in replica scenarios, on PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from scripts.benchmark.postgres_server import POSTGRES_URL_SETTING
from scripts.benchmark.registry import CPU_REFERENCE, all_scenarios
from tests.conftest import POSTGRES_URL
from tests.scripts.bench_short_runs import ROOT, bench_command


@pytest.mark.slow(seconds=35)
@pytest.mark.postgres
@pytest.mark.timeout(660)
async def test_replica_scenarios_run_on_postgresql_when_named(tmp_path: Path) -> None:
    admin = make_url(POSTGRES_URL)
    try:
        probe = await asyncpg.connect(
            host=admin.host, port=admin.port, user=admin.username, database=admin.database
        )
    except (OSError, asyncpg.PostgresError) as error:
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {error}")
    await probe.close()
    output = tmp_path / "bench.json"
    # One call at a time: what this checks is that the deployment runs, not how fast.
    bench = await asyncio.create_subprocess_exec(
        *bench_command(
            *("--scenario", "pg.", "--duration", "0.3", "--warmup", "0.2", "--rounds", "1"),
            *("--concurrency", "1", "--json", str(output)),
        ),
        cwd=ROOT,
        env={
            **os.environ,
            "SUPERAPP_BENCH_CATALOGUE_PRODUCTS": "500",
            "SUPERAPP_BENCH_PG_USERS": "4",
            POSTGRES_URL_SETTING: POSTGRES_URL,
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    stdout, _ = await asyncio.wait_for(bench.communicate(), timeout=600)
    assert bench.returncode == 0, stdout.decode()
    assert "cores busy in pg.wallet.CreateTransfer 2 replicas" in stdout.decode()

    document = json.loads(output.read_text())
    assert document["failures"] == []
    results = {row["scenario"]: row for row in document["results"]}
    replicas = [s for s in all_scenarios() if s.opt_in and s.name.startswith("pg.")]
    assert set(results) == {CPU_REFERENCE} | {scenario.name for scenario in replicas}
    metered = {"server", "load generator", "machine"}
    if admin.host in {"127.0.0.1", "localhost"}:
        metered.add("postgresql")  # its processes are readable only on this machine
    for scenario in replicas:
        row = results[scenario.name]
        assert row["throughput_rps"] > 0, row
        assert row["ratio"] > 0, row
        assert row["cpu_per_call_us"] > 0, row
        assert metered <= set(row["cores"]), row
