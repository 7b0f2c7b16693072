"""A real short bench run of every default scenario, and what every row must hold.

One run, as `scripts/bench` runs by default (no `--scenario`): the scenarios share its
servers (identity, wallet, catalogue, their NATS, the echo) and its start-up, which cost
more than all the measuring (three runs by theme started each of them up to three times).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scripts.benchmark.registry import CPU_REFERENCE, all_scenarios
from scripts.benchmark.scenario import Scenario

ROOT = Path(__file__).resolve().parents[2]

ROUNDS = 1
CONCURRENCY = 4
# About a minute on an idle machine; five minutes at load 25 (seen, with two rounds): three
# times that tells slow from hung.
RUN_TIMEOUT = 900


def bench_command(*args: str) -> list[str]:
    """`scripts/bench` with `args`, as this interpreter runs it."""
    return [sys.executable, "-m", "scripts.benchmark", *args]


def default_scenarios() -> list[Scenario]:
    """What the bench measures when no scenario is named: all but the opt-in ones."""
    return [scenario for scenario in all_scenarios() if not scenario.opt_in]


def short_run(tmp_path: Path) -> tuple[str, dict[str, Any]]:
    """`scripts/bench` on its default scenarios with the smallest settings: its stdout
    and JSON."""
    output = tmp_path / "bench.json"
    bench = subprocess.Popen(
        bench_command(
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
