"""Turn measurements into rows with ratios, a text table and a JSON document."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from scripts.benchmark.runner import Failure, Measurement

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
    """Throughput relative to the ceiling's at the same concurrency; None for a ceiling."""


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (`fraction` 0.5 is the median)."""
    if not sorted_values:
        raise ValueError("no values")
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def summarize(measurements: Sequence[Measurement]) -> list[Row]:
    """Rows in measurement order, each with its ratio to its ceiling where one was measured."""
    throughput = {
        (m.scenario.name, m.concurrency): len(m.sample.latencies) / m.sample.elapsed
        for m in measurements
    }
    rows = []
    for m in measurements:
        latencies = sorted(m.sample.latencies)
        ceiling = m.scenario.ceiling
        ceiling_rps = throughput.get((ceiling, m.concurrency)) if ceiling else None
        own_rps = throughput[(m.scenario.name, m.concurrency)]
        rows.append(
            Row(
                scenario=m.scenario.name,
                ceiling=ceiling,
                concurrency=m.concurrency,
                requests=len(latencies),
                errors=sum(m.sample.errors.values()),
                error_kinds=dict(m.sample.errors.most_common()),
                throughput_rps=own_rps,
                p50_ms=percentile(latencies, 0.50) * 1000 if latencies else None,
                p99_ms=percentile(latencies, 0.99) * 1000 if latencies else None,
                ratio=own_rps / ceiling_rps if ceiling_rps else None,
            )
        )
    return rows


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _versus(row: Row) -> str:
    if row.ceiling is None:
        return "ceiling"
    if row.ratio is None:
        return f"? ({row.ceiling} not measured)"
    return f"{row.ratio:.2f}x {row.ceiling}"


def format_table(rows: Sequence[Row], failures: Sequence[Failure] = ()) -> str:
    """A plain-text table, then error kinds and failed scenarios, if any."""
    header = ("scenario", "conc", "req/s", "p50 ms", "p99 ms", "errors", "vs ceiling")
    cells = [
        (
            f"{row.scenario} (ceiling)" if row.ceiling is None else row.scenario,
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
