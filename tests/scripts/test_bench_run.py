"""A real short bench run, end to end, of every default scenario."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.scripts.bench_short_runs import (
    RUN_TIMEOUT,
    check_short_run,
    default_scenarios,
    short_run,
)


@pytest.mark.slow(seconds=70)
@pytest.mark.timeout(RUN_TIMEOUT + 120)  # the run, then its clean-up
def test_short_run_measures_every_scenario_and_writes_json(tmp_path: Path) -> None:
    # Every default scenario, and no opt-in one: the bench cannot rot unseen.
    stdout, document = short_run(tmp_path)
    check_short_run(stdout, document, default_scenarios())
