"""Outbox → relay → JetStream → inbox consumer: nothing lost, everything applied once."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import nats
import pytest
from nats.js.api import StreamInfo
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from superapp.identity.v1 import events_pb2

from scripts.nats_process import NatsProcess
from services.database import Database
from services.eventbus import Envelope, Outbox, OutboxRelay
from services.runtime.clock import SystemClock
from services.runtime.ids import new_id
from tests.conftest import ROOT
from tests.eventbus.conftest import TABLES, Bench, effects, produce, record_effect, until

pytestmark = pytest.mark.slow(seconds=25)


async def _stream(nats_url: str, name: str) -> StreamInfo:
    client = await nats.connect(nats_url)
    try:
        return await client.jetstream().stream_info(name)
    finally:
        await client.close()


_ACK_WAIT_SECONDS = 5.0
"""How long JetStream waits before it hands out again the events the killed consumer had
taken: with the services' 30 s, the test waited that long for them and nothing else."""


async def _consumer_process(nats_url: str, database_url: str) -> asyncio.subprocess.Process:
    """A consuming service in its own OS process; returns once it is connected."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "scripts.benchmark.consumer_process",
        nats_url,
        database_url,
        "effects-process",
        str(_ACK_WAIT_SECONDS),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    assert await asyncio.wait_for(process.stdout.readline(), timeout=60) == b"ready\n"
    return process


async def _handled(database: Database) -> tuple[int, int, int]:
    """(handler runs, distinct events, inbox rows) on the consuming side."""
    async with database.read() as session:
        runs, distinct = (
            await session.execute(text("SELECT count(*), count(DISTINCT user_id) FROM handled"))
        ).one()
        inbox = (
            await session.execute(
                select(func.count())
                .select_from(TABLES.inbox)
                .where(TABLES.inbox.c.consumer == "effects-process")
            )
        ).scalar_one()
    return int(runs), int(distinct), int(inbox)


_EVENTS = 400


@pytest.mark.timeout(240)
async def test_hundreds_of_events_survive_a_nats_crash_and_a_consumer_crash(
    bench: Bench, nats: NatsProcess, database_url: str, tmp_path: Path
) -> None:
    """Producer here; consumer in its own process, SIGKILLed mid-stream and started again;
    nats-server SIGKILLed mid-burst. Every event is handled exactly once in effect.

    400 events: more than one relay batch (256) and six consumer batches (64), so the
    crashes find batches in flight on both sides; a thousand proved nothing more."""
    consumer_url = (
        database_url  # PostgreSQL: the same test database, its own tables
        if database_url.startswith("postgresql")
        else f"sqlite+aiosqlite:///{tmp_path / 'consumer.db'}"  # its own file, as deployed
    )
    outbox, relay = bench.producer()
    consumer = await _consumer_process(bench.nats_url, consumer_url)
    consumed = Database.connect(consumer_url)

    async def at_least(count: int) -> bool:
        return (await _handled(consumed))[0] >= count

    try:
        burst = asyncio.create_task(produce(bench, outbox, _EVENTS))
        await until(lambda: at_least(80), 60, "the first 80 effects")
        nats.kill()  # mid-burst: in-flight publishes and acknowledgements are lost
        await asyncio.sleep(0.5)
        nats.start()
        await until(lambda: at_least(200), 60, "200 effects after the NATS crash")
        consumer.kill()  # the consuming service crashes, maybe inside a handler
        await consumer.wait()
        consumer = await _consumer_process(bench.nats_url, consumer_url)
        await burst
        await until(lambda: at_least(_EVENTS), 90, "all 400 effects")
        await asyncio.sleep(1.0)  # any redelivery in flight must change nothing
        assert await _handled(consumed) == (_EVENTS, _EVENTS, _EVENTS)
        await until(lambda: _backlog_empty(relay), 10, "an empty backlog")
        info = await _stream(bench.nats_url, "SUPERAPP_IDENTITY")
        assert info.state.messages == _EVENTS  # retried publishes were deduplicated by event id
    finally:
        if consumer.returncode is None:
            consumer.terminate()
            await consumer.wait()
        await consumed.dispose()


async def _backlog_empty(relay: OutboxRelay) -> bool:
    return (await relay.backlog()).count == 0


async def _count_at_least(bench: Bench, count: int) -> bool:
    rows, _ = await effects(bench.database)
    return rows >= count


async def test_jetstream_drops_a_second_publish_of_one_event_id(bench: Bench) -> None:
    client = await nats.connect(bench.nats_url)
    try:
        jetstream = client.jetstream()
        from services.eventbus import ensure_stream, stream_of

        await ensure_stream(jetstream, stream_of("identity"))
        headers = {"Nats-Msg-Id": new_id()}
        first = await jetstream.publish("superapp.identity.user.registered", b"", headers=headers)
        second = await jetstream.publish("superapp.identity.user.registered", b"", headers=headers)
        info = await jetstream.stream_info("SUPERAPP_IDENTITY")
    finally:
        await client.close()
    assert (first.duplicate, second.duplicate) == (None, True)
    assert second.seq == first.seq
    assert info.state.messages == 1


async def test_events_wait_in_the_outbox_while_nats_is_away(
    bench: Bench, nats: NatsProcess
) -> None:
    nats.stop()
    outbox, relay = bench.producer()
    await produce(bench, outbox, 20)
    await asyncio.sleep(0.5)
    backlog = await relay.backlog()
    assert backlog.count == 20
    assert backlog.oldest_age_seconds > 0
    nats.start()
    bench.consumer()
    await until(lambda: _count_at_least(bench, 20), 30, "the buffered events")
    # A consumer may see a message before the relay has read JetStream's acknowledgement.
    await until(lambda: _backlog_empty(relay), 10, "an empty backlog")


async def test_a_stopping_relay_first_publishes_what_is_already_committed(bench: Bench) -> None:
    # No wake-up and no poll within the test: only the stop itself can find the rows.
    outbox, relay = bench.producer(poll_seconds=3600.0)
    bench.consumer()
    await produce(bench, outbox, 10)
    await until(lambda: _count_at_least(bench, 10), 30, "the first events")
    await until(lambda: _backlog_empty(relay), 10, "the first events marked")
    # Committed by another process of the service, say: nothing wakes this relay.
    elsewhere = Outbox(TABLES, "superapp.identity", SystemClock())
    await produce(bench, elsewhere, 10)

    await relay.stop()

    assert (await relay.backlog()).count == 0
    await until(lambda: _count_at_least(bench, 20), 30, "the events committed before the stop")


async def test_a_rolled_back_transaction_publishes_nothing(bench: Bench) -> None:
    outbox, relay = bench.producer()
    bench.consumer()

    async def record_then_fail() -> None:
        async with bench.database.write() as session:
            await outbox.record(session, events_pb2.UserRegistered(user_id="lost"), "lost")
            raise RuntimeError("the state change failed")

    with pytest.raises(RuntimeError):
        await record_then_fail()
    await produce(bench, outbox, 10)
    await until(lambda: _count_at_least(bench, 10), 30, "the committed events")
    await until(lambda: _backlog_empty(relay), 10, "an empty backlog")
    async with bench.database.read() as session:
        total = (await session.execute(select(func.count()).select_from(TABLES.outbox))).scalar()
    assert total == 10


# Only PostgreSQL has concurrent writers, so only there can an event numbered before
# others commit after them.
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_an_event_committed_after_later_numbered_ones_is_still_published(
    bench: Bench,
) -> None:
    outbox, relay = bench.producer()
    bench.consumer()
    async with bench.database.write() as late:
        await outbox.record(late, events_pb2.UserRegistered(user_id="late"), "late")
        # Numbered, not committed: ten later-numbered events commit and go out first.
        await produce(bench, outbox, 10)
        await until(lambda: _count_at_least(bench, 10), 30, "the later events")
    await until(lambda: _count_at_least(bench, 11), 30, "the late event")
    await until(lambda: _backlog_empty(relay), 10, "an empty backlog")
    assert await effects(bench.database) == (11, 11)


async def test_a_failing_handler_dead_letters_without_blocking_others(bench: Bench) -> None:
    poisoned = new_id()

    async def picky(
        session: AsyncSession, event: events_pb2.UserRegistered, envelope: Envelope
    ) -> None:
        if event.user_id == poisoned:
            raise ValueError("cannot open a wallet for this user")
        await record_effect(session, event, envelope)

    outbox, _ = bench.producer()
    bench.consumer(picky, max_deliver=3, backoff_seconds=(0.05,))
    async with bench.database.write() as session:
        event_id = await outbox.record(
            session, events_pb2.UserRegistered(user_id=poisoned), poisoned
        )
    await produce(bench, outbox, 10)
    await until(lambda: _count_at_least(bench, 10), 30, "the healthy events")

    client = await nats.connect(bench.nats_url)
    try:
        jetstream = client.jetstream()
        await until(lambda: _has_messages(jetstream, "SUPERAPP_DEADLETTER"), 30, "the dead letter")
        letter = await jetstream.get_last_msg("SUPERAPP_DEADLETTER", "superapp.deadletter.effects")
    finally:
        await client.close()
    headers = letter.headers or {}
    assert headers["superapp-deadletter-reason"] == "ValueError: cannot open a wallet for this user"
    assert headers["superapp-deadletter-deliveries"] == "3"
    assert headers["superapp-deadletter-subject"] == "superapp.identity.user.registered"
    assert (headers["ce-id"], headers["ce-type"]) == (
        event_id,
        "superapp.identity.v1.UserRegistered",
    )
    assert events_pb2.UserRegistered.FromString(letter.data or b"").user_id == poisoned
    assert await effects(bench.database) == (10, 10)


async def _has_messages(jetstream: nats.js.JetStreamContext, stream: str) -> bool:
    try:
        return (await jetstream.stream_info(stream)).state.messages > 0
    except nats.js.errors.NotFoundError:
        return False


async def test_a_consumer_that_starts_before_its_publisher_is_ready_at_once(bench: Bench) -> None:
    """Its readiness is what a service's health waits for: once set, the next event
    published reaches the handler without a wait for the publisher's stream."""
    consumer = bench.consumer()
    await asyncio.wait_for(consumer.ready.wait(), timeout=30)
    # The publisher's stream exists although no publisher has started.
    assert (await _stream(bench.nats_url, "SUPERAPP_IDENTITY")).config.name == "SUPERAPP_IDENTITY"

    outbox, relay = bench.producer()
    await asyncio.wait_for(relay.ready.wait(), timeout=30)
    await produce(bench, outbox, 10)
    await until(lambda: _effects_are(bench, 10), 30, "10 events handled")


async def _effects_are(bench: Bench, count: int) -> bool:
    return await effects(bench.database) == (count, count)
