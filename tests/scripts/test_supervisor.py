"""The stack's supervisor on small real processes: restarts, backoff, giving up, stopping."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from scripts.supervisor import Child, GaveUp, RestartPolicy
from tests.conftest import process_alive

QUICK = RestartPolicy(first_delay_seconds=0.05, max_delay_seconds=0.2, max_crashes=3)


async def _at_once(seen: Callable[[str], None]) -> None:
    return


async def _never(seen: Callable[[str], None]) -> None:
    seen("still starting")
    await asyncio.Event().wait()


def _child(tmp_path: Path, code: str, ready: object = _at_once) -> Child:
    return Child(
        name="worker",
        argv=[sys.executable, "-c", code],
        env=dict(os.environ),
        ready_check=ready,  # type: ignore[arg-type]
        sink=io.StringIO(),
        width=8,
        cwd=tmp_path,
    )


async def _replaced(child: Child, first: int) -> None:
    while True:
        if child.pid != first and child.ready:
            return
        await asyncio.sleep(0.02)


def test_the_pause_doubles_with_each_recent_crash_up_to_its_cap() -> None:
    policy = RestartPolicy(first_delay_seconds=0.25, max_delay_seconds=5.0)
    assert [policy.delay(n) for n in range(1, 8)] == [0.25, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


async def test_a_killed_process_is_started_again(tmp_path: Path) -> None:
    child = _child(tmp_path, "import time; print('up', flush=True); time.sleep(60)")
    stop = asyncio.Event()
    await child.launch()
    keeper = asyncio.create_task(child.keep_running(QUICK, 30.0, stop))
    try:
        first = child.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        async with asyncio.timeout(30):
            await _replaced(child, first)
        assert child.starts == 2
        assert process_alive(child.pid)  # type: ignore[arg-type]
        assert not keeper.done()
    finally:
        stop.set()
        await child.stop(asyncio.Event())
        await keeper


async def test_a_process_that_keeps_crashing_is_given_up_with_its_last_words(
    tmp_path: Path,
) -> None:
    child = _child(tmp_path, "print('cannot go on', flush=True); raise SystemExit(3)")
    await child.launch()
    with pytest.raises(GaveUp) as gave_up:
        async with asyncio.timeout(60):
            await child.keep_running(QUICK, 30.0, asyncio.Event())

    assert child.starts == 3
    report = str(gave_up.value)
    assert report.startswith("stack: worker exited with code 3: 3 crashes within 60s; giving up")
    assert "    cannot go on" in report


async def test_a_restart_that_never_gets_ready_is_killed_and_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    child = _child(tmp_path, "import time; time.sleep(60)", ready=_never)
    await child.launch()
    assert child.pid is not None
    os.kill(child.pid, signal.SIGKILL)
    with pytest.raises(GaveUp):
        async with asyncio.timeout(60):
            await child.keep_running(QUICK, 0.3, asyncio.Event())
    assert child.starts == 3
    assert "worker not ready 0.3s after its restart (still starting)" in capsys.readouterr().err


async def test_a_stop_during_the_pause_starts_nothing(tmp_path: Path) -> None:
    slow = RestartPolicy(first_delay_seconds=30.0, max_delay_seconds=30.0)
    child = _child(tmp_path, "raise SystemExit(1)")
    stop = asyncio.Event()
    await child.launch()
    keeper = asyncio.create_task(child.keep_running(slow, 30.0, stop))
    await child.wait_exit()
    await asyncio.sleep(0.1)  # the keeper is in its pause now
    stop.set()
    async with asyncio.timeout(5):
        await keeper
    assert child.starts == 1
