"""`scripts/bench`: measure our hot paths beside their bare ceilings and print the ratios."""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import subprocess
import sys
import tempfile
from collections.abc import Coroutine, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import grpc

from scripts.benchmark.registry import CPU_REFERENCE, all_scenarios, select
from scripts.benchmark.report import format_table, summarize, write_json
from scripts.benchmark.runner import Plan, RunResult, run_benchmark
from scripts.benchmark.scenario import Scenario, Window
from scripts.benchmark.server_process import ROOT

__all__ = ["main"]

_T = TypeVar("_T")


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def _int_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 1,32, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected numbers >= 1 like 1,32, got {text!r}")
    return values


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scripts/bench",
        description="Measure each hot path beside its bare ceiling in one run; print "
        "throughput, p50, p99 and the ratio to the ceiling, and write JSON.",
    )
    parser.add_argument(
        "--duration",
        type=_positive_float,
        default=3.0,
        help="measured seconds per scenario, concurrency and round (default 3)",
    )
    parser.add_argument(
        "--warmup",
        type=_non_negative_float,
        default=1.0,
        help="warm-up seconds before each measurement (default 1)",
    )
    parser.add_argument(
        "--rounds",
        type=_positive_int,
        default=3,
        help="rounds per concurrency; scenarios take turns in each, and a ratio is "
        "the median of the rounds' ratios (default 3)",
    )
    parser.add_argument(
        "--concurrency",
        type=_int_list,
        default=[1, 32],
        help="concurrent workers, a comma list (default 1,32)",
    )
    parser.add_argument(
        "--channels",
        type=_positive_int,
        default=1,
        help="client channels (connections) per server (default 1)",
    )
    parser.add_argument(
        "--only",
        "--scenario",
        action="append",
        default=[],
        dest="only",
        metavar="SUBSTRING",
        help="run scenarios whose name contains it (repeatable or comma "
        "list), opt-in ones included; their ceilings and the echo (the CPU "
        "reference) always run too",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        metavar="PATH",
        help="where to write results (default bench-results/bench-<time>.json)",
    )
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    return parser  # fmt: skip


def _git_commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT, capture_output=True, text=True, check=False, timeout=5,
        )  # fmt: skip
    except OSError:
        return None
    return done.stdout.strip() or None


def _context(
    plan: Plan, started: datetime, loop_name: str, load_average: Sequence[float]
) -> dict[str, Any]:
    return {
        "started_at": started.isoformat(timespec="seconds"),
        "commit": _git_commit(),
        "host": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "grpcio": grpc.__version__,
            "event_loop": loop_name,
            # Other work on the machine skews every number; this shows how busy it was.
            "load_average_at_start": list(load_average),
        },
        "settings": {
            "duration_s": plan.window.duration,
            "warmup_s": plan.window.warmup,
            "concurrency": list(plan.concurrencies),
            "channels": plan.channels,
            "rounds": plan.rounds,
        },
    }


def _run_loop(main: Coroutine[Any, Any, _T]) -> tuple[_T, str]:
    """Run `main` on uvloop, as our services do, or on asyncio's loop without it."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main), "asyncio"
    return uvloop.run(main), "uvloop"


async def _run(scenarios: Sequence[Scenario], plan: Plan) -> RunResult:
    # Ctrl-C cancels this task through asyncio.run; SIGTERM should clean up the same way.
    task = asyncio.current_task()
    if task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    with tempfile.TemporaryDirectory(prefix="superapp-bench-") as work_dir:
        return await run_benchmark(
            scenarios,
            plan,
            Path(work_dir),
            progress=lambda line: print(f"bench: {line}", file=sys.stderr, flush=True),
        )


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line, run the bench, print the table and write the JSON."""
    args = _parser().parse_args(argv)
    known = all_scenarios()
    if args.list:
        for scenario in known:
            notes = [note for note, shown in [("ceiling", scenario.is_ceiling),
                     ("opt-in", scenario.opt_in)] if shown]  # fmt: skip
            print(scenario.name + (f" ({', '.join(notes)})" if notes else ""))
        return
    only = [part.strip() for value in args.only for part in value.split(",") if part.strip()]
    try:
        scenarios = select(known, only, always=[CPU_REFERENCE])
    except ValueError as error:
        print(f"bench: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    plan = Plan(
        concurrencies=args.concurrency,
        window=Window(warmup=args.warmup, duration=args.duration),
        channels=args.channels,
        rounds=args.rounds,
    )
    started = datetime.now(UTC)
    load_average = os.getloadavg()
    try:
        result, loop_name = _run_loop(_run(scenarios, plan))
    except KeyboardInterrupt:
        print("bench: interrupted; servers stopped", file=sys.stderr)
        raise SystemExit(130) from None
    except asyncio.CancelledError:
        print("bench: terminated; servers stopped", file=sys.stderr)
        raise SystemExit(143) from None
    rows = summarize(result.measurements, cpu_reference=CPU_REFERENCE)
    print(format_table(rows, result.failures))
    path = args.json or Path("bench-results") / f"bench-{started:%Y%m%dT%H%M%SZ}.json"
    write_json(path, rows, result.failures, _context(plan, started, loop_name, load_average))
    print(f"bench: results written to {path}", file=sys.stderr)
    if result.failures:
        raise SystemExit(1)
