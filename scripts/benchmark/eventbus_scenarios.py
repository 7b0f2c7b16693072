"""Event-bus scenarios: the relay beside raw JetStream publishing, and end-to-end latency.

All three run in the bench process against a private nats-server and a SQLite file, and
measure themselves (`SelfTimed`); they ignore the concurrency setting, because the
relay publishes from one task and the latency target is defined at a steady rate.
Their server side, for CPU time per event, is the bench process and the nats-server,
and for end-to-end also the relay's and the consumer's processes.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import nats
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy import MetaData
from superapp.identity.v1 import events_pb2

from scripts.benchmark.consumer_process import HANDLED_QUERY
from scripts.benchmark.environment import Environment
from scripts.benchmark.process_cpu import Processes
from scripts.benchmark.scenario import Sample, Scenario, Window, server_meter
from scripts.nats_process import NatsProcess
from services.database import Database
from services.eventbus import (
    NatsLink,
    Outbox,
    OutboxRelay,
    ensure_stream,
    event_subject,
    event_tables,
    stream_of,
)
from services.eventbus.relay_process import RelayProcess
from services.runtime.clock import SystemClock
from services.runtime.ids import new_id

__all__ = ["eventbus_scenarios"]

RAW_PUBLISH = "nats.js.publish (sync)"
_EVENT = events_pb2.UserRegistered
_LATENCY_RATE = 200.0


@dataclass
class _Bus:
    """A NATS server and a database with the bus's tables, shared by the scenarios."""

    nats: NatsProcess
    database: Database
    outbox: Outbox
    links: list[NatsLink] = field(default_factory=list)

    def link(self, name: str) -> NatsLink:
        link = NatsLink(self.nats.url, name)
        link.start()
        self.links.append(link)
        return link


async def _database(env: Environment, name: str) -> Database:
    """A SQLite file with the bus's tables, as a service's migrations would leave it."""
    metadata = MetaData()
    event_tables(metadata)
    database = Database.connect(f"sqlite+aiosqlite:///{env.work_dir / f'{name}.db'}")
    async with database.write_connection() as connection:
        await connection.run_sync(metadata.create_all)
    return database


async def _bus(env: Environment, name: str) -> _Bus:
    server = NatsProcess(env.work_dir / f"nats-{name}").start()
    database = await _database(env, f"producer-{name}")
    tables = event_tables(MetaData())
    outbox = Outbox(tables, "superapp.identity", SystemClock())
    bus = _Bus(server, database, outbox)

    async def release() -> None:
        for link in bus.links:
            await link.close()
        await database.dispose()
        server.stop()

    env.on_close(release)
    return bus


def _with_bench(*pids: int | None) -> Processes:
    """The bench process, and `pids` with their children."""
    return Processes.this_process() | Processes(trees=[pid for pid in pids if pid is not None])


@dataclass
class _RawPublish:
    """`await js.publish(...)` one message at a time: the synchronous publishing ceiling."""

    nats: NatsProcess

    async def measure(self, concurrency: int, window: Window) -> Sample:
        client = await nats.connect(self.nats.url)
        try:
            jetstream = client.jetstream()
            await ensure_stream(jetstream, stream_of("identity"))
            subject = event_subject(_EVENT)
            payload = _EVENT(user_id=new_id(), email="bench@example.com").SerializeToString()
            sample = Sample()
            end_warmup = time.perf_counter() + window.warmup
            while time.perf_counter() < end_warmup:
                await jetstream.publish(subject, payload, headers={"Nats-Msg-Id": new_id()})
            stop = server_meter(_with_bench(self.nats.pid)).start()
            start = time.perf_counter()
            while (now := time.perf_counter()) - start < window.duration:
                await jetstream.publish(subject, payload, headers={"Nats-Msg-Id": new_id()})
                sample.latencies.append(time.perf_counter() - now)
            sample.elapsed = time.perf_counter() - start
            sample.cpu = stop()
            return sample
        finally:
            await client.close()


@dataclass
class _RelayDrain:
    """Fill the outbox, then time the relay draining it (events/s).

    The relay is judged by throughput; each event's latency entry is the drain time
    divided by the events drained (amortised), so its p50/p99 are not request latencies.
    """

    bus: _Bus
    tracer_provider: TracerProvider

    async def _fill(self, count: int) -> None:
        for start in range(0, count, 500):
            async with self.bus.database.write() as session:
                for _ in range(min(500, count - start)):
                    user_id = new_id()
                    await self.bus.outbox.record(session, _EVENT(user_id=user_id), user_id)

    async def measure(self, concurrency: int, window: Window) -> Sample:
        count = max(2000, int(6000 * window.duration))
        await self._fill(count)
        relay = OutboxRelay(
            database=self.bus.database,
            tables=event_tables(MetaData()),
            outbox=self.bus.outbox,
            link=self.bus.link("relay"),
            stream=stream_of("identity"),
            tracer_provider=self.tracer_provider,
            clock=SystemClock(),
        )
        await self.bus.links[-1].wait()
        await ensure_stream(self.bus.links[-1].jetstream, stream_of("identity"))
        stop = server_meter(_with_bench(self.bus.nats.pid)).start()
        start = time.perf_counter()
        relay.start()
        try:
            while relay.published < count:  # noqa: ASYNC110 - the relay exposes a counter, not an event
                await asyncio.sleep(0.002)
        finally:
            await relay.stop()
        elapsed = time.perf_counter() - start
        cpu = stop()
        return Sample(latencies=[elapsed / count] * count, elapsed=elapsed, cpu=cpu)


@dataclass
class _EndToEnd:
    """Commit one event per transaction at a steady rate; time commit → handler run.

    The producer runs here, with its relay in a child process, as in the publishing
    service; the consumer runs in its own process with its own database, as the
    consuming service would. Both sides stamp wall-clock time, which one machine shares.
    Relay and consumer start once per run (`_end_to_end`) and serve every round, as
    they serve a deployment: a round measures them running, not starting.
    """

    bus: _Bus
    consumer_database: Path
    relay: RelayProcess
    consumer: subprocess.Popen[bytes]
    committed: dict[str, float] = field(default_factory=dict)

    async def measure(self, concurrency: int, window: Window) -> Sample:
        await self._steady(window.warmup)
        self.committed.clear()
        parts = _with_bench(self.relay.pid, self.consumer.pid, self.bus.nats.pid)
        stop = server_meter(parts).start()
        start = time.perf_counter()
        await self._steady(window.duration)
        elapsed = time.perf_counter() - start
        cpu = stop()
        handled = await self._handled(deadline=time.perf_counter() + 10)
        sample = Sample(elapsed=elapsed, cpu=cpu)
        for user_id, at in self.committed.items():
            if user_id in handled:
                sample.latencies.append(handled[user_id] - at)
            else:
                sample.errors["not delivered within 10 s"] += 1
        return sample

    async def _handled(self, deadline: float) -> dict[str, float]:
        """Handler times of the committed events, once all arrived or at the deadline."""
        while True:
            with sqlite3.connect(self.consumer_database) as connection:
                handled = dict(connection.execute(HANDLED_QUERY))
            if self.committed.keys() <= handled.keys() or time.perf_counter() > deadline:
                return handled
            await asyncio.sleep(0.05)

    async def _commit_one(self) -> None:
        user_id = new_id()
        async with self.bus.database.write() as session:
            await self.bus.outbox.record(session, _EVENT(user_id=user_id), user_id)
        self.committed[user_id] = time.time()

    async def _steady(self, seconds: float) -> None:
        """Offer `_LATENCY_RATE` commits per second, each in its own task, so a slow
        commit delays only itself and the offered rate holds (an open-loop producer)."""
        interval = 1 / _LATENCY_RATE
        next_at = time.perf_counter()
        end = next_at + seconds
        async with asyncio.TaskGroup() as producers:
            while next_at < end:
                producers.create_task(self._commit_one())
                next_at += interval
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))


async def _raw(env: Environment) -> _RawPublish:
    return _RawPublish((await _bus(env, "raw")).nats)


async def _relay(env: Environment) -> _RelayDrain:
    return _RelayDrain(await _bus(env, "relay"), TracerProvider())


async def _end_to_end(env: Environment) -> _EndToEnd:
    bus = await _bus(env, "e2e")
    consumer_database = env.work_dir / "e2e-consumer.db"
    # As a service runs it by default: in a child process, woken through its pipe.
    relay = RelayProcess(
        "identity", database_url=bus.database.url, nats_url=bus.nats.url, outbox=bus.outbox
    )
    # Popen spawns with vfork: a fork from the event loop (uvloop) runs gRPC's fork
    # handlers while its threads are busy, and the child may die before its first line.
    consumer = subprocess.Popen(  # noqa: ASYNC220
        [
            sys.executable,
            "-m",
            "scripts.benchmark.consumer_process",
            bus.nats.url,
            f"sqlite+aiosqlite:///{consumer_database}",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
    )

    async def release() -> None:
        if consumer.poll() is None:
            consumer.terminate()
        await asyncio.to_thread(consumer.wait)
        await relay.stop()

    # Stopped before the bus (`_bus` registered its release first).
    env.on_close(release)
    relay.start()
    assert consumer.stdout is not None
    said = await asyncio.wait_for(asyncio.to_thread(consumer.stdout.readline), timeout=30)
    if said.strip() != b"ready":
        raise RuntimeError(f"the consumer process said {said!r}, exit code {consumer.poll()}")
    return _EndToEnd(bus, consumer_database, relay, consumer)


def eventbus_scenarios() -> list[Scenario]:
    """Raw publishing first, as the relay's ceiling; end-to-end latency stands alone."""
    return [
        Scenario(RAW_PUBLISH, _raw),
        Scenario("eventbus.relay", _relay, ceiling=RAW_PUBLISH),
        Scenario(f"eventbus.commit-to-handler@{_LATENCY_RATE:.0f}/s", _end_to_end),
    ]
