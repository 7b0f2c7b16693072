"""Turn measurements into rows with ratios, a text table and a JSON document.

Beside throughput and latency, each row has the server side's CPU time per call (the
`SERVER` part of its samples over the calls completed in the windows, failed ones
included: the server did their work too) and that figure relative to the CPU
reference's (the bare echo's) at the same concurrency.
"""

from __future__ import annotations

import json
import math
import os
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from scripts.benchmark.runner import Failure, Measurement
from scripts.benchmark.scenario import LOAD_GENERATOR, SERVER, Target

__all__ = ["Row", "format_table", "percentile", "summarize", "write_json"]


@dataclass(frozen=True)
class Row:
    """One line of the table and one entry of the JSON `results`."""

    scenario: str
    ceiling: str | None
    concurrency: int
    requests: int
    errors: int
    error_kinds: dict[str, int]
    throughput_rps: float
    p50_ms: float | None
    p99_ms: float | None
    ratio: float | None
    """Throughput relative to the ceiling's at the same concurrency; None for a ceiling.

    With several rounds, the median of the rounds' ratios, each against the ceiling
    measured in the same round."""
    ratio_min: float | None = None
    ratio_max: float | None = None
    """The lowest and highest of the rounds' ratios."""
    rounds: int = 1
    latency_versus: str | None = None
    p50_ratio: float | None = None
    """p50 relative to `latency_versus`'s at the same concurrency: the median of the
    rounds' ratios, each against that scenario's p50 in the same round."""
    target: str | None = None
    """The scenario's target, described (see `Target.describe`); None without one."""
    target_met: bool | None = None
    """Whether the figure is within the target; None without a target or a figure."""
    cpu_per_call_us: float | None = None
    """Server-side CPU microseconds per completed call, all rounds pooled; None where
    the workload names no server."""
    cpu_vs_echo: float | None = None
    """`cpu_per_call_us` relative to the CPU reference's (the echo's) at the same
    concurrency: the median of the rounds' ratios, each within its round."""
    cpu_vs_echo_min: float | None = None
    cpu_vs_echo_max: float | None = None
    """The lowest and highest of the rounds' CPU ratios."""
    cores: dict[str, float] | None = None
    """Cores each metered part kept busy on average over the windows (CPU seconds per
    second): the server, the load generator and any part beside them."""


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (`fraction` 0.5 is the median)."""
    if not sorted_values:
        raise ValueError("no values")
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def _rps(measurement: Measurement) -> float:
    return len(measurement.sample.latencies) / measurement.sample.elapsed


def _p50(measurement: Measurement) -> float | None:
    latencies = sorted(measurement.sample.latencies)
    return percentile(latencies, 0.50) if latencies else None


def _completed(measurement: Measurement) -> int:
    return len(measurement.sample.latencies) + sum(measurement.sample.errors.values())


def _cpu_per_call(measurement: Measurement) -> float | None:
    """Server CPU seconds per completed call in one window, if it was metered."""
    cpu = measurement.sample.cpu.get(SERVER)
    completed = _completed(measurement)
    return None if cpu is None or completed == 0 else cpu / completed


def _round_ratios(
    group: Sequence[Measurement],
    versus: str | None,
    by_round: Mapping[tuple[str, int, int], float | None],
) -> list[float]:
    """Each round's figure (`by_round`) over that of `versus` in the same round, sorted.

    A round where either side has no figure (it answered nothing, or was not metered)
    has no ratio, rather than a ratio of 0.
    """
    return sorted(
        own / other
        for m in group
        if versus
        and (own := by_round[(m.scenario.name, m.concurrency, m.round)]) is not None
        and (other := by_round.get((versus, m.concurrency, m.round))) is not None
        and other > 0
    )


def _pooled_cpu(group: Sequence[Measurement]) -> tuple[float | None, dict[str, float] | None]:
    """CPU microseconds per completed call and the cores each part kept busy, pooled."""
    metered = [m for m in group if m.sample.cpu]
    if not metered:
        return None, None
    elapsed = sum(m.sample.elapsed for m in metered)
    seconds: Counter[str] = Counter()
    for m in metered:
        seconds.update(m.sample.cpu)
    served = [m for m in metered if SERVER in m.sample.cpu]
    completed = sum(_completed(m) for m in served)
    per_call = sum(m.sample.cpu[SERVER] for m in served) / completed * 1e6 if completed else None
    cores = {part: used / elapsed for part, used in seconds.items()} if elapsed > 0 else None
    return per_call, cores


def _target_met(
    target: Target | None,
    p50_ms: float | None,
    p99_ms: float | None,
    p50_ratio: float | None,
    cpu_vs_echo: float | None,
    ratio: float | None,
) -> bool | None:
    if target is None:
        return None
    figures = {
        "p50": p50_ms,
        "p99": p99_ms,
        "p50 ratio": p50_ratio,
        "cpu vs echo": cpu_vs_echo,
        "ratio": ratio,
    }
    value = figures[target.figure]
    return None if value is None else target.met_by(value)


def summarize(measurements: Sequence[Measurement], cpu_reference: str | None = None) -> list[Row]:
    """A row per scenario and concurrency, in measurement order, its rounds pooled.

    Throughput, percentiles and CPU per call pool every round; the ratio is the median
    of the rounds' ratios, each against the ceiling measured in that same round (and
    likewise the p50 ratio against `latency_versus`, and the CPU ratio against
    `cpu_reference`, the scenario whose CPU per call the others are compared with).
    """
    groups: dict[tuple[str, int], list[Measurement]] = {}
    for m in measurements:
        groups.setdefault((m.scenario.name, m.concurrency), []).append(m)
    per_round = {(m.scenario.name, m.concurrency, m.round): _rps(m) for m in measurements}
    per_round_p50 = {(m.scenario.name, m.concurrency, m.round): _p50(m) for m in measurements}
    per_round_cpu = {
        (m.scenario.name, m.concurrency, m.round): _cpu_per_call(m) for m in measurements
    }
    rows = []
    for (name, concurrency), group in groups.items():
        scenario = group[0].scenario
        latencies = sorted(latency for m in group for latency in m.sample.latencies)
        errors: Counter[str] = Counter()
        for m in group:
            errors.update(m.sample.errors)
        elapsed = sum(m.sample.elapsed for m in group)
        ceiling = scenario.ceiling
        ratios = sorted(
            _rps(m) / ceiling_rps
            for m in group
            if ceiling and (ceiling_rps := per_round.get((ceiling, concurrency, m.round), 0.0)) > 0
        )
        p50_ms = percentile(latencies, 0.50) * 1000 if latencies else None
        p99_ms = percentile(latencies, 0.99) * 1000 if latencies else None
        p50_ratios = _round_ratios(group, scenario.latency_versus, per_round_p50)
        p50_ratio = statistics.median(p50_ratios) if p50_ratios else None
        cpu_per_call_us, cores = _pooled_cpu(group)
        cpu_ratios = _round_ratios(group, cpu_reference, per_round_cpu)
        cpu_vs_echo = statistics.median(cpu_ratios) if cpu_ratios else None
        target = scenario.target
        rows.append(
            Row(
                scenario=name,
                ceiling=ceiling,
                concurrency=concurrency,
                requests=len(latencies),
                errors=sum(errors.values()),
                error_kinds=dict(errors.most_common()),
                throughput_rps=len(latencies) / elapsed,
                p50_ms=p50_ms,
                p99_ms=p99_ms,
                ratio=statistics.median(ratios) if ratios else None,
                ratio_min=ratios[0] if ratios else None,
                ratio_max=ratios[-1] if ratios else None,
                rounds=len(group),
                latency_versus=scenario.latency_versus,
                p50_ratio=p50_ratio,
                target=target.describe() if target else None,
                target_met=_target_met(
                    target,
                    p50_ms,
                    p99_ms,
                    p50_ratio,
                    cpu_vs_echo,
                    statistics.median(ratios) if ratios else None,
                ),
                cpu_per_call_us=cpu_per_call_us,
                cpu_vs_echo=cpu_vs_echo,
                cpu_vs_echo_min=cpu_ratios[0] if cpu_ratios else None,
                cpu_vs_echo_max=cpu_ratios[-1] if cpu_ratios else None,
                cores=cores,
            )
        )
    return rows


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _is_ceiling(row: Row) -> bool:
    return row.ceiling is None and row.target is None


def _against_target(row: Row) -> str:
    verdict = {True: "met", False: "MISSED", None: "not measured"}[row.target_met]
    return f"target {row.target}: {verdict}"


def _versus(row: Row) -> str:
    if row.ceiling is None:
        return _against_target(row) if row.target else "ceiling"
    if row.ratio is None:
        versus = f"? ({row.ceiling} not measured)"
    else:
        versus = f"{row.ratio:.2f}x {row.ceiling}"
        if row.rounds > 1 and row.ratio_min is not None and row.ratio_max is not None:
            versus += f" (rounds {row.ratio_min:.2f}-{row.ratio_max:.2f})"
    if row.p50_ratio is not None:
        versus += f"; p50 {row.p50_ratio:.2f}x {row.latency_versus}"
    return versus + (f"; {_against_target(row)}" if row.target else "")


def _cpu(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _times(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _cores(row: Row) -> str | None:
    """Where a row metered more than its server and load generator (a database server,
    the machine): the cores each part kept busy, to show which one ran out."""
    if not row.cores or not set(row.cores) - {SERVER, LOAD_GENERATOR}:
        return None
    parts = ", ".join(f"{part} {cores:.2f}" for part, cores in row.cores.items())
    where = f"{row.scenario} at concurrency {row.concurrency}"
    return f"cores busy in {where}: {parts} (of {os.cpu_count()})"


def format_table(rows: Sequence[Row], failures: Sequence[Failure] = ()) -> str:
    """A plain-text table, then cores busy, error kinds and failed scenarios, if any.

    `cpu/call µs` is the server side's CPU time per call and `cpu vs echo` that over the
    echo's. The last column compares each row with its ceiling and, where it has one,
    with its target; a missed target is printed in capitals and does not fail the run."""
    header = (
        "scenario", "conc", "req/s", "p50 ms", "p99 ms", "errors", "cpu/call µs",
        "cpu vs echo", "vs ceiling",
    )  # fmt: skip
    cells = [
        (
            f"{row.scenario} (ceiling)" if _is_ceiling(row) else row.scenario,
            str(row.concurrency),
            f"{row.throughput_rps:,.0f}",
            _ms(row.p50_ms),
            _ms(row.p99_ms),
            str(row.errors),
            _cpu(row.cpu_per_call_us),
            _times(row.cpu_vs_echo),
            _versus(row),
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [header, *cells]) for i in range(len(header))]
    # Names and the ratio read left to right; numbers line up on the right.
    left = {0, len(header) - 1}

    def render(line: Sequence[str]) -> str:
        return "  ".join(
            text.ljust(width) if i in left else text.rjust(width)
            for i, (text, width) in enumerate(zip(line, widths, strict=True))
        ).rstrip()

    lines = [render(header), render(["-" * width for width in widths])]
    lines += [render(line) for line in cells]
    lines += [line for row in rows if (line := _cores(row))]
    for row in rows:
        if row.error_kinds:
            kinds = ", ".join(f"{kind} x{count}" for kind, count in row.error_kinds.items())
            lines.append(f"errors in {row.scenario} at concurrency {row.concurrency}: {kinds}")
    lines += [f"FAILED {f.scenario} ({f.stage}): {f.reason}" for f in failures]
    return "\n".join(lines)


def write_json(
    path: Path,
    rows: Sequence[Row],
    failures: Sequence[Failure],
    context: Mapping[str, Any],
) -> None:
    """Write the run as JSON: `context` (settings, host) plus `results` and `failures`."""
    document = {
        **context,
        "results": [asdict(row) for row in rows],
        "failures": [asdict(failure) for failure in failures],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
