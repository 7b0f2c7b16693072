"""Turn measurements into rows with ratios, a text table and a JSON document."""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from scripts.benchmark.runner import Failure, Measurement
from scripts.benchmark.scenario import Target

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


def _p50_ratio(
    group: Sequence[Measurement], per_round_p50: Mapping[Any, float | None]
) -> float | None:
    # A round where either side answered nothing has no ratio (not a ratio of 0).
    versus = group[0].scenario.latency_versus
    ratios = [
        own / other
        for m in group
        if versus
        and (own := per_round_p50[(m.scenario.name, m.concurrency, m.round)]) is not None
        and (other := per_round_p50.get((versus, m.concurrency, m.round))) is not None
        and other > 0
    ]
    return statistics.median(ratios) if ratios else None


def _target_met(
    target: Target | None, p50_ms: float | None, p99_ms: float | None, p50_ratio: float | None
) -> bool | None:
    if target is None:
        return None
    value = {"p50": p50_ms, "p99": p99_ms, "p50 ratio": p50_ratio}[target.figure]
    return None if value is None else target.met_by(value)


def summarize(measurements: Sequence[Measurement]) -> list[Row]:
    """A row per scenario and concurrency, in measurement order, its rounds pooled.

    Throughput and percentiles pool every round; the ratio is the median of the rounds'
    ratios, each against the ceiling measured in that same round (and likewise the p50
    ratio against `latency_versus`).
    """
    groups: dict[tuple[str, int], list[Measurement]] = {}
    for m in measurements:
        groups.setdefault((m.scenario.name, m.concurrency), []).append(m)
    per_round = {(m.scenario.name, m.concurrency, m.round): _rps(m) for m in measurements}
    per_round_p50 = {(m.scenario.name, m.concurrency, m.round): _p50(m) for m in measurements}
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
        p50_ratio = _p50_ratio(group, per_round_p50)
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
                target_met=_target_met(target, p50_ms, p99_ms, p50_ratio),
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


def format_table(rows: Sequence[Row], failures: Sequence[Failure] = ()) -> str:
    """A plain-text table, then error kinds and failed scenarios, if any.

    The last column compares each row with its ceiling and, where it has one, with
    its target; a missed target is printed in capitals and does not fail the run."""
    header = ("scenario", "conc", "req/s", "p50 ms", "p99 ms", "errors", "vs ceiling")
    cells = [
        (
            f"{row.scenario} (ceiling)" if _is_ceiling(row) else row.scenario,
            str(row.concurrency),
            f"{row.throughput_rps:,.0f}",
            _ms(row.p50_ms),
            _ms(row.p99_ms),
            str(row.errors),
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
