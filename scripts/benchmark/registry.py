"""Every scenario the bench knows, and the choice of which to run.

A new scenario is one entry here (or one more module of scenarios listed here).
"""

from __future__ import annotations

from collections.abc import Sequence

from scripts.benchmark.bff_scenarios import bff_scenarios
from scripts.benchmark.catalogue_scenarios import catalogue_scenarios
from scripts.benchmark.database_scenarios import database_scenarios
from scripts.benchmark.eventbus_scenarios import eventbus_scenarios
from scripts.benchmark.identity_scenarios import identity_scenarios
from scripts.benchmark.miniapps_scenarios import miniapps_scenarios
from scripts.benchmark.replica_scenarios import replica_scenarios
from scripts.benchmark.rpc_scenarios import GRPC_ECHO, rpc_scenarios
from scripts.benchmark.scenario import Scenario
from scripts.benchmark.stop_scenarios import stop_scenarios
from scripts.benchmark.wallet_scenarios import wallet_scenarios

__all__ = ["CPU_REFERENCE", "all_scenarios", "select"]

CPU_REFERENCE = GRPC_ECHO
"""Every scenario's CPU time per call is compared with this one's, so it always runs."""


def all_scenarios() -> list[Scenario]:
    """All scenarios in run order; each ceiling comes before what is compared with it."""
    return [
        *rpc_scenarios(),
        *identity_scenarios(),
        *wallet_scenarios(),
        *catalogue_scenarios(),
        *bff_scenarios(),
        *eventbus_scenarios(),
        *database_scenarios(),
        *miniapps_scenarios(),
        *stop_scenarios(),
        *replica_scenarios(),
    ]


def select(
    scenarios: Sequence[Scenario], only: Sequence[str], always: Sequence[str] = ()
) -> list[Scenario]:
    """Scenarios whose name contains one of `only` (all but the opt-in ones when
    empty), plus their ceilings and the scenarios named in `always` (if known).

    Raises ValueError when nothing matches or a ceiling is not among `scenarios`.
    """
    by_name = {scenario.name: scenario for scenario in scenarios}
    for scenario in scenarios:
        if scenario.ceiling is not None and scenario.ceiling not in by_name:
            raise ValueError(f"{scenario.name}: unknown ceiling {scenario.ceiling!r}")
    wanted = {
        scenario.name
        for scenario in scenarios
        if any(part in scenario.name for part in only) or not (only or scenario.opt_in)
    }
    if not wanted:
        names = ", ".join(by_name)
        raise ValueError(f"no scenario matches {', '.join(only)!r}; known: {names}")
    # A ratio needs its ceiling measured in the same run.
    wanted |= {ceiling for name in wanted if (ceiling := by_name[name].ceiling) is not None}
    wanted |= set(always) & by_name.keys()
    return [scenario for scenario in scenarios if scenario.name in wanted]
