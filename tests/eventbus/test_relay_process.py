"""The relay in a child process: it publishes what commits, is replaced if it dies, and
never outlives the service that started it."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import nats as nats_py
import pytest
from sqlalchemy import func, select

from scripts.nats_process import NatsProcess
from services.eventbus import Outbox, ServiceEventBus, stream_of
from services.eventbus.relay_process import (
    DATABASE_URL,
    NATS_URL,
    SERVICE,
    STATUS_FD,
    WAKE_FD,
    RelayProcess,
)
from services.runtime.clock import SystemClock
from services.runtime.ports import free_port
from tests.conftest import ROOT, process_alive
from tests.eventbus.conftest import TABLES, Bench, effects, produce, until

pytestmark = pytest.mark.slow(seconds=20)

_SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _relay_process(bench: Bench, outbox: Outbox, **options: object) -> RelayProcess:
    return RelayProcess(
        "identity",  # the conftest's outbox writes identity's events
        database_url=bench.database.url,
        nats_url=bench.nats_url,
        outbox=outbox,
        **options,  # type: ignore[arg-type]
    )


async def _unpublished(bench: Bench) -> int:
    outbox = TABLES.outbox
    async with bench.database.read() as session:
        query = select(func.count()).where(outbox.c.published_time.is_(None))
        return int((await session.execute(query)).scalar_one())


async def test_the_child_publishes_every_committed_event_and_marks_them_before_it_exits(
    bench: Bench,
) -> None:
    outbox = Outbox(TABLES, "superapp.identity", SystemClock())
    relay = _relay_process(bench, outbox)
    relay.start()
    bench.consumer()
    try:
        await produce(bench, outbox, 60)
        await until(lambda: _has_effects(bench, 60), 60, "60 events handled")
    finally:
        pid = relay.pid
        await relay.stop()

    assert pid is not None
    assert not process_alive(pid)
    assert relay.pid is None
    # Acknowledged events were marked before the child let go: none is sent twice.
    assert await _unpublished(bench) == 0
    assert relay.starts == 1


@_SQLITE_ONLY
async def test_a_child_that_dies_is_replaced_and_nothing_committed_meanwhile_is_lost(
    bench: Bench,
) -> None:
    outbox = Outbox(TABLES, "superapp.identity", SystemClock())
    relay = _relay_process(bench, outbox, check_seconds=0.05, restart_seconds=(0.1, 0.1))
    relay.start()
    bench.consumer()
    try:
        await produce(bench, outbox, 20)
        await until(lambda: _has_effects(bench, 20), 60, "the first 20 events")
        first = relay.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        await produce(bench, outbox, 20)  # while no relay runs, or its successor starts

        await until(lambda: _has_effects(bench, 40), 60, "the 20 events after the kill")
        assert relay.starts == 2
        assert relay.pid not in (None, first)
    finally:
        await relay.stop()


_ORPHANING_PARENT = """
import asyncio, sys
from services.eventbus import Outbox, ServiceEventBus
from services.eventbus.relay_process import (
    DATABASE_URL,
    NATS_URL,
    SERVICE,
    WAKE_FD,
    RelayProcess,
)
from services.runtime.clock import SystemClock
from services.runtime.ports import free_port
from tests.eventbus.conftest import TABLES

async def main() -> None:
    outbox = Outbox(TABLES, "superapp.identity", SystemClock())
    relay = RelayProcess("identity", database_url=sys.argv[1], nats_url=sys.argv[2], outbox=outbox)
    relay.start()
    print(relay.pid, flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


@_SQLITE_ONLY
async def test_the_child_exits_when_the_service_that_started_it_is_killed(bench: Bench) -> None:
    url = bench.database.url
    parent = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _ORPHANING_PARENT,
        url,
        bench.nats_url,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert parent.stdout is not None
        child = int(await asyncio.wait_for(parent.stdout.readline(), timeout=60))
        assert process_alive(child)

        parent.kill()
        await parent.wait()

        async def orphan_gone() -> bool:
            return not process_alive(child)

        await until(orphan_gone, 30, "the orphaned relay to exit")
    finally:
        if parent.returncode is None:
            parent.kill()
            await parent.wait()


async def _has_effects(bench: Bench, count: int) -> bool:
    return await effects(bench.database) == (count, count)


@_SQLITE_ONLY
async def test_a_child_released_before_it_reached_nats_exits(bench: Bench) -> None:
    """Its service let go during the child's start-up, and NATS is unreachable: the
    child still stops connecting, flushes nothing, and exits cleanly."""
    read_end, write_end = os.pipe()
    status_read, status_write = os.pipe()
    environment = {
        **os.environ,
        SERVICE: "identity",
        DATABASE_URL: bench.database.url,
        NATS_URL: f"nats://127.0.0.1:{free_port()}",
        WAKE_FD: str(read_end),
        STATUS_FD: str(status_write),
    }
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.eventbus.relay_child", cwd=ROOT, env=environment,
        pass_fds=(read_end, status_write),
    )  # fmt: skip
    os.close(read_end)
    os.close(write_end)
    os.close(status_write)
    try:
        assert await asyncio.wait_for(child.wait(), timeout=30) == 0
        # It never reached NATS, so it never said it relays.
        assert os.read(status_read, 64) == b""
    finally:
        os.close(status_read)
        if child.returncode is None:
            child.kill()
            await child.wait()


@_SQLITE_ONLY
async def test_a_service_that_only_publishes_keeps_no_nats_connection_of_its_own(
    bench: Bench,
) -> None:
    bus = ServiceEventBus(
        "identity",
        nats_url=bench.nats_url,
        database=bench.database,
        tables=TABLES,
        tracer_provider=bench.tracer_provider,
        clock=SystemClock(),
        relay="process",
    )
    bus.start()
    bench.consumer()
    try:
        await produce(bench, bus.outbox, 10)
        await until(lambda: _has_effects(bench, 10), 60, "10 events through the relay child")
        assert not bus.link.is_connected
    finally:
        await bus.stop()


@_SQLITE_ONLY
async def test_the_relay_reports_ready_only_once_it_reaches_nats_with_its_stream(
    bench: Bench, nats: NatsProcess
) -> None:
    """What the service's health waits for: no SERVING while events could not flow."""
    nats.stop()  # NATS is away when the service starts
    outbox = Outbox(TABLES, "superapp.identity", SystemClock())
    relay = _relay_process(bench, outbox)
    relay.start()
    try:
        await asyncio.sleep(2.0)  # the child is up and keeps trying
        assert relay.pid is not None
        assert process_alive(relay.pid)
        assert not relay.ready.is_set()

        nats.start()
        await asyncio.wait_for(relay.ready.wait(), timeout=60)
        client = await nats_py.connect(nats.url)
        try:
            info = await client.jetstream().stream_info(stream_of("identity").name)
            assert info.config.subjects == ["superapp.identity.>"]
        finally:
            await client.close()
    finally:
        await relay.stop()
