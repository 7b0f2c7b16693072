"""The local stack going down: a service that keeps crashing, a killed launcher."""

from __future__ import annotations

import os
import signal

import pytest

from tests.e2e.conftest import StackFactory

# One file per theme, so that pytest-xdist (one file per worker) runs the themes side by
# side: each test starts stacks of its own, which is what made one file the suite's pole.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


async def test_a_service_that_keeps_crashing_stops_the_stack_with_a_report(
    make_stack: StackFactory,
) -> None:
    # Five crashes within a window: on a loaded machine each restart takes its time, so
    # the window is wide enough for five of them (the launcher's default is 60 s).
    stack = make_stack(args=("--crash-window", "600")).start()
    await stack.wait_ready()
    pids = stack.pids()
    os.kill(pids["wallet"], signal.SIGKILL)
    await stack.wait_gone({"wallet": pids["wallet"]}, within=5.0)
    # Its database replaced by a directory, every restart of the wallet fails at once.
    database = stack.data_dir / "wallet.db"
    database.rename(database.with_suffix(".db.moved"))
    database.mkdir()
    assert await stack.wait_exit(within=400.0) == 1

    assert "stack: wallet exited with code 1: 5 crashes within 600s; giving up" in stack.stderr
    assert "wallet: cannot start: WALLET_DATABASE_URL" in stack.stderr
    await stack.wait_gone(stack.pids(), within=1.0)


async def test_every_child_dies_with_a_killed_launcher(make_stack: StackFactory) -> None:
    stack = make_stack().start()
    await stack.wait_ready()
    pids = stack.pids()
    relays = stack.relay_pids()
    assert stack.process is not None

    # `scripts/stack` execs the launcher, so the pid we hold is the launcher's.
    stack.process.kill()
    stack.process.wait()

    await stack.wait_gone({**pids, **relays})  # nats-server and the relays included
