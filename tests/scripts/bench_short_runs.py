"""A real short bench run of some of the default scenarios, and what every row must hold.

The default scenarios are measured in three runs, one per test file (a theme each), so
that pytest-xdist runs them side by side: one run of all of them was the suite's longest
file. `SHORT_RUNS` names each run's part; a test holds that together they cover every
default scenario and bring no opt-in one along.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scripts.benchmark.registry import CPU_REFERENCE, all_scenarios, select
from scripts.benchmark.scenario import Scenario

ROOT = Path(__file__).resolve().parents[2]

SHORT_RUNS: dict[str, list[str]] = {
    "services": [
        "health.",
        "identity.",
        "argon2id.",
        "catalogue.ListCategories",
        "catalogue.ListProducts",
        "catalogue.SearchProducts",
        # The stop paths start no server: here they leave the BFF's run the lighter.
        "runtime.",
    ],
    # A "(metrics off)" scenario brings the one it is compared with (its ceiling) along.
    "writes": [
        "ledger.",
        "wallet.CreateTransfer (metrics off)",
        "catalogue.GetProduct (metrics off)",
        "nats.",
        "eventbus.",
        "database.",
    ],
    "edge": ["bff.", "miniapps.review 1 MiB", "miniapps.GET"],
}
"""Each short run's `--scenario` substrings."""

ROUNDS = 2
CONCURRENCY = 4
# About half a minute each on an idle machine: ten times that tells slow from hung.
RUN_TIMEOUT = 600


def bench_command(*args: str) -> list[str]:
    """`scripts/bench` with `args`, as this interpreter runs it."""
    return [sys.executable, "-m", "scripts.benchmark", *args]


def scenarios_of(run: str) -> list[Scenario]:
    """What the bench measures for `run`: its scenarios, their ceilings and the echo."""
    return select(all_scenarios(), SHORT_RUNS[run], always=[CPU_REFERENCE])


def short_run(run: str, tmp_path: Path) -> tuple[str, dict[str, Any]]:
    """`scripts/bench` on `run`'s part with the smallest settings: its stdout and JSON."""
    output = tmp_path / "bench.json"
    bench = subprocess.Popen(
        bench_command(
            *("--scenario", ",".join(SHORT_RUNS[run])),
            *("--duration", "0.3", "--warmup", "0.1", "--rounds", str(ROUNDS)),
            *("--concurrency", str(CONCURRENCY), "--json", str(output)),
        ),
        cwd=ROOT,
        # A small catalogue: seeding the bench's 100,000 products is not what this tests.
        env={**os.environ, "SUPERAPP_BENCH_CATALOGUE_PRODUCTS": "2000"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = bench.communicate(timeout=RUN_TIMEOUT)
    finally:
        if bench.poll() is None:
            # SIGTERM: the harness stops its servers (a SIGKILL left them running,
            # loading every test after it).
            bench.terminate()
            try:
                bench.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                bench.kill()
                bench.communicate()
    assert bench.returncode == 0, stdout + stderr
    return stdout, json.loads(output.read_text())


def check_short_run(stdout: str, document: dict[str, Any], scenarios: Sequence[Scenario]) -> None:
    """Every scenario measured in every round, with its figures, ratios and target."""
    assert "vs ceiling" in stdout
    assert "cpu/call µs" in stdout
    assert "cpu vs echo" in stdout
    assert document["settings"]["concurrency"] == [CONCURRENCY]
    assert document["settings"]["rounds"] == ROUNDS
    assert document["failures"] == []
    results = {row["scenario"]: row for row in document["results"]}
    assert set(results) == {scenario.name for scenario in scenarios}
    assert results[CPU_REFERENCE]["cpu_vs_echo"] == 1.0
    for scenario in scenarios:
        row = results[scenario.name]
        assert row["throughput_rps"] > 0, row
        assert row["p50_ms"] is not None
        assert row["p99_ms"] >= row["p50_ms"]
        assert row["rounds"] == ROUNDS
        # Every scenario names what serves it: its CPU time per call is measured.
        assert row["cpu_per_call_us"] > 0, row
        assert 0 < row["cpu_vs_echo_min"] <= row["cpu_vs_echo"] <= row["cpu_vs_echo_max"], row
        assert row["cores"]["server"] > 0, row
        if scenario.ceiling is None:
            assert row["ratio"] is None
        else:
            assert row["ceiling"] == scenario.ceiling
            # A round may complete no call (a throttled Login on a loaded machine): 0.
            assert 0 <= row["ratio_min"] <= row["ratio"] <= row["ratio_max"], row
        if scenario.target is None:
            assert row["target"] is None
        else:
            # Printed beside its figure; whether it was met is not this test's business.
            assert row["target"] == scenario.target.describe()
            assert row["target_met"] in (True, False), row
