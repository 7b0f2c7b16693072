"""The bench harness: the scenario contract, its summaries and its selection.

No timing targets here: the numbers belong to the bench output, not to pass/fail.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scripts.benchmark.environment import Environment
from scripts.benchmark.load_generator import drive
from scripts.benchmark.process_cpu import Processes, process_cpu_seconds
from scripts.benchmark.registry import CPU_REFERENCE, all_scenarios, select
from scripts.benchmark.repeated import Repeated
from scripts.benchmark.report import format_table, summarize
from scripts.benchmark.runner import Measurement, Plan, run_benchmark
from scripts.benchmark.scenario import SERVER, ClosedLoop, Sample, Scenario, Target, Window

ROOT = Path(__file__).resolve().parents[2]


async def unused(_env: Environment) -> ClosedLoop:
    """The setup of a scenario that a test only summarizes or selects, never runs."""
    return ClosedLoop([])


def test_a_ratio_is_the_median_of_rounds_each_against_its_own_ceiling() -> None:
    ceiling = Scenario("ceiling", unused)
    path = Scenario("path", unused, ceiling="ceiling")

    def measured(scenario: Scenario, requests: int, round_: int) -> Measurement:
        return Measurement(scenario, 8, Sample(latencies=[0.001] * requests, elapsed=1.0), round_)

    # The machine slowed down in round 1: both sides of that round's ratio show it.
    rows = summarize(
        [
            measured(ceiling, 1000, 0),
            measured(path, 500, 0),
            measured(ceiling, 400, 1),
            measured(path, 240, 1),
            measured(ceiling, 1000, 2),
            measured(path, 550, 2),
        ]
    )

    assert [(row.scenario, row.rounds) for row in rows] == [("ceiling", 3), ("path", 3)]
    pooled = rows[1]
    assert pooled.throughput_rps == (500 + 240 + 550) / 3
    assert pooled.ratio == pytest.approx(0.55)  # median of 0.50, 0.60 and 0.55
    assert (pooled.ratio_min, pooled.ratio_max) == (pytest.approx(0.5), pytest.approx(0.6))
    assert "0.55x ceiling (rounds 0.50-0.60)" in format_table(rows)


def test_cpu_per_call_pools_the_rounds_and_compares_with_the_echo_round_by_round() -> None:
    echo = Scenario("echo", unused)
    point = Scenario(
        "point", unused, ceiling="echo", target=Target("cpu vs echo", at_most=1.5, source="x")
    )

    def measured(
        scenario: Scenario, calls: int, failed: int, cpu: float, round_: int
    ) -> Measurement:
        sample = Sample(latencies=[0.001] * calls, elapsed=2.0, cpu={SERVER: cpu})
        sample.errors["UNAVAILABLE"] = failed
        return Measurement(scenario, 4, sample, round_)

    # The server did the failed calls' work too: they count as calls.
    rows = summarize(
        [
            measured(echo, 1000, 0, 0.5, 0),
            measured(point, 900, 100, 0.8, 0),
            measured(echo, 500, 0, 0.5, 1),
            measured(point, 500, 0, 0.7, 1),
        ],
        cpu_reference="echo",
    )

    reference, pointed = rows
    assert reference.cpu_per_call_us == pytest.approx(1e6 * 1.0 / 1500)
    assert reference.cpu_vs_echo == 1.0
    assert pointed.cpu_per_call_us == pytest.approx(1e6 * 1.5 / 1500)
    # Round 0: 800 µs against 500; round 1: 1,400 against 1,000.
    assert (pointed.cpu_vs_echo_min, pointed.cpu_vs_echo_max) == (
        pytest.approx(1.4),
        pytest.approx(1.6),
    )
    assert pointed.cpu_vs_echo == pytest.approx(1.5)
    assert pointed.cores == {SERVER: pytest.approx(1.5 / 4)}
    assert pointed.target_met is True
    table = format_table(rows)
    assert "cpu/call µs" in table
    assert "1.50x" in table
    assert "target cpu vs echo <= 1.5x (x): met" in table
    # Without the reference in the run, no ratio; without a server named, no figure.
    alone = summarize([measured(point, 10, 0, 0.1, 0)])
    assert alone[0].cpu_vs_echo is None
    unmetered = Measurement(point, 1, Sample(latencies=[0.001], elapsed=1.0))
    assert summarize([unmetered])[0].cpu_per_call_us is None


def test_a_process_tree_counts_children_born_and_reaped_inside_the_window() -> None:
    work = "sum(range(3 * 10**6))"
    tree = Processes(trees=[os.getpid()]).start()
    alone = Processes.this_process().start()
    subprocess.run([sys.executable, "-c", work], check=True)  # born, ran and reaped
    stays = f"{work}; print('done', flush=True); import time; time.sleep(60)"
    child = subprocess.Popen([sys.executable, "-c", stays], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "done\n"
        live_child = process_cpu_seconds(child.pid)
        in_tree, by_itself = tree(), alone()
    finally:
        child.kill()
        child.communicate()
    assert live_child is not None
    assert live_child > 0
    # The reaped child counts in both (as its parent's reaped share), the live one only
    # in the tree; the reaped share is read in clock ticks.
    assert by_itself > 0
    assert in_tree >= by_itself + live_child - 0.02


def test_a_latency_target_compares_p50s_round_by_round() -> None:
    point = Scenario("point", unused, ceiling="point")
    search = Scenario("search", unused, ceiling="point", latency_versus="point")

    def measured(scenario: Scenario, p50: float, round_: int) -> Measurement:
        latencies = [p50 / 2, p50, p50 * 4]
        return Measurement(scenario, 1, Sample(latencies=latencies, elapsed=1.0), round_)

    # Round 1 ran twice as slow for both: it counts as a round like the others.
    rows = summarize(
        [
            measured(point, 0.001, 0),
            measured(search, 0.0025, 0),
            measured(point, 0.002, 1),
            measured(search, 0.006, 1),
            measured(point, 0.001, 2),
            measured(search, 0.0028, 2),
        ]
    )

    searched = rows[1]
    assert searched.p50_ratio == pytest.approx(2.8)  # median of 2.5, 3.0 and 2.8
    assert rows[0].p50_ratio is None
    assert "; p50 2.80x point" in format_table(rows)


def test_a_target_is_printed_beside_its_figure_and_never_fails_the_run() -> None:
    bounded = Target("p99", at_most=10, source="the budget")
    ranged = Target("p50 ratio", at_least=0.8, at_most=1.25)
    reference = Scenario("reference", unused)
    held = Scenario("held", unused, target=bounded)
    compared = Scenario(
        "compared", unused, ceiling="reference", latency_versus="reference", target=ranged
    )

    def measured(scenario: Scenario, latency: float) -> Measurement:
        return Measurement(scenario, 1, Sample(latencies=[latency] * 3, elapsed=1.0))

    rows = summarize(
        [measured(reference, 0.001), measured(held, 0.012), measured(compared, 0.0011)]
    )

    assert [(row.target, row.target_met) for row in rows] == [
        (None, None),
        ("p99 <= 10 ms (the budget)", False),
        ("p50 ratio 0.8-1.25", True),
    ]
    table = format_table(rows)
    assert "reference (ceiling)" in table
    assert "held (ceiling)" not in table
    assert "target p99 <= 10 ms (the budget): MISSED" in table
    assert "; p50 1.10x reference; target p50 ratio 0.8-1.25: met" in table
    with pytest.raises(ValueError, match="at_least, at_most or both"):
        Target("p50")


def test_a_throughput_target_reads_the_ratio_to_the_ceiling() -> None:
    # A metrics-off row against its metrics-on ceiling: off 4% faster is within the 5%.
    cost = Target("ratio", at_most=1 / 0.95, source="metrics cost at most 5%")
    on = Scenario("on", unused)
    off = Scenario("off", unused, ceiling="on", target=cost)

    def measured(scenario: Scenario, calls: int) -> Measurement:
        return Measurement(scenario, 1, Sample(latencies=[0.001] * calls, elapsed=1.0))

    within, beyond = (
        summarize([measured(on, 100), measured(off, faster)])[1] for faster in (104, 110)
    )
    assert (within.target, within.target_met) == (
        "ratio <= 1.05263x (metrics cost at most 5%)",
        True,
    )
    assert beyond.target_met is False


async def test_a_repeated_operation_is_measured_at_least_once() -> None:
    figures = iter([0.5, 0.25, 0.125])

    async def operation() -> float:
        await asyncio.sleep(0)
        return next(figures)

    # A window far shorter than any operation still measures one, and no more.
    sample = await Repeated(operation).measure(1, Window(warmup=0, duration=1e-9))

    assert sample.latencies == [0.5]
    assert sample.elapsed > 0


class _SqliteInserts:
    """A self-timed workload: blocking sqlite3 inserts, timed by the workload itself."""

    def __init__(self, path: Path) -> None:
        self._path = path

    async def measure(self, concurrency: int, window: Window) -> Sample:
        sample = Sample(elapsed=window.duration)
        with sqlite3.connect(self._path) as connection:
            connection.execute("CREATE TABLE IF NOT EXISTS entries (amount INTEGER)")
            measure_from = time.perf_counter() + window.warmup
            measure_until = measure_from + window.duration
            while (began := time.perf_counter()) < measure_until:
                connection.execute("INSERT INTO entries VALUES (1)")
                connection.commit()
                if began >= measure_from:
                    sample.latencies.append(time.perf_counter() - began)
        return sample


async def test_both_workload_kinds_run_and_failures_are_not_throughput(tmp_path: Path) -> None:
    attempts = itertools.count()

    async def every_other_call_fails() -> None:
        await asyncio.sleep(0)
        if next(attempts) % 2:
            raise ConnectionError("refused")

    async def closed_loop(_env: Environment) -> ClosedLoop:
        return ClosedLoop([every_other_call_fails])

    async def self_timed(env: Environment) -> _SqliteInserts:
        return _SqliteInserts(env.work_dir / "raw.db")

    async def broken(_env: Environment) -> ClosedLoop:
        raise RuntimeError("cannot set up")

    scenarios = [
        Scenario("sqlite3.insert", self_timed),
        Scenario("flaky.call", closed_loop, ceiling="sqlite3.insert"),
        Scenario("broken.setup", broken, ceiling="sqlite3.insert"),
    ]
    # A whole second: one fsync'd insert took longer than a 0.2 s window at load 16.
    result = await run_benchmark(
        scenarios, Plan(concurrencies=[1, 3], window=Window(warmup=0.05, duration=1.0)), tmp_path
    )

    assert [(f.scenario, f.stage) for f in result.failures] == [("broken.setup", "setup")]
    rows = summarize(result.measurements)
    assert [(row.scenario, row.concurrency) for row in rows] == [
        ("sqlite3.insert", 1),
        ("flaky.call", 1),
        ("sqlite3.insert", 3),
        ("flaky.call", 3),
    ]
    for row in rows:
        assert row.throughput_rps == row.requests / 1.0
        assert row.requests > 0
        if row.scenario == "flaky.call":
            assert row.error_kinds == {"ConnectionError": row.errors}
            assert abs(row.errors - row.requests) <= row.concurrency + 1
            assert row.ratio is not None
        else:
            assert row.errors == 0
            assert row.ratio is None
    table = format_table(rows, result.failures)
    assert "FAILED broken.setup (setup): RuntimeError: cannot set up" in table
    assert "ConnectionError x" in table


def test_only_brings_the_ceiling_along() -> None:
    chosen = select(all_scenarios(), ["catalogue.List"])
    assert [scenario.name for scenario in chosen] == [
        "grpc.echo",
        "catalogue.ListCategories",
        "catalogue.ListProducts (category)",
    ]


def test_opt_in_scenarios_run_only_when_named_and_the_echo_always_runs() -> None:
    known = all_scenarios()
    everything = [scenario.name for scenario in select(known, [])]
    assert "pg.wallet.CreateTransfer 2 replicas" not in everything
    assert len(everything) == sum(not scenario.opt_in for scenario in known)
    chosen = select(known, ["pg.wallet"], always=[CPU_REFERENCE])
    assert [scenario.name for scenario in chosen] == [
        "grpc.echo",
        "pg.wallet.CreateTransfer 1 replica",
        "pg.wallet.CreateTransfer 2 replicas",
    ]
    assert [s.name for s in select(known, ["health"], always=[CPU_REFERENCE])] == [
        "grpc.echo",
        "health.check",
    ]


def test_unknown_selection_or_ceiling_is_refused() -> None:
    with pytest.raises(ValueError, match="no scenario matches"):
        select(all_scenarios(), ["no-such-path"])
    with pytest.raises(ValueError, match="unknown ceiling"):
        select([Scenario("orphan", unused, ceiling="missing")], [])


async def test_a_window_without_a_completed_call_stays_open_until_the_first_one() -> None:
    # One call takes longer than the window (a throttled Login on a loaded machine).
    async def slow_call() -> None:
        await asyncio.sleep(0.3)

    sample = await drive(ClosedLoop([slow_call]), 1, Window(warmup=0.0, duration=0.05))

    assert len(sample.latencies) == 1
    assert sample.elapsed >= 0.25


async def test_a_window_with_completed_calls_closes_at_its_end() -> None:
    calls = 0

    async def quick_call() -> None:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.001)

    sample = await drive(ClosedLoop([quick_call]), 2, Window(warmup=0.0, duration=0.1))

    assert sample.elapsed == pytest.approx(0.1)
    assert 0 < len(sample.latencies) <= calls


async def test_failures_alone_keep_a_window_open_until_a_call_succeeds() -> None:
    # Refused for a moment (sign-ins past the hashing budget), then served.
    attempts = 0

    async def refused_ten_times() -> None:
        nonlocal attempts
        attempts += 1
        await asyncio.sleep(0.02)
        if attempts <= 10:
            raise RuntimeError("busy")

    sample = await drive(ClosedLoop([refused_ten_times]), 1, Window(warmup=0.0, duration=0.05))

    assert len(sample.latencies) == 1
    assert sample.errors["RuntimeError"] == 10
    assert sample.elapsed >= 0.2


async def test_a_window_of_failures_only_closes_at_its_longest() -> None:
    async def always_refused() -> None:
        await asyncio.sleep(0.01)
        raise RuntimeError("broken")

    sample = await drive(ClosedLoop([always_refused]), 1, Window(warmup=0.0, duration=0.02))

    assert sample.latencies == []
    assert sample.errors["RuntimeError"] > 0
    assert sample.elapsed == pytest.approx(0.4)
