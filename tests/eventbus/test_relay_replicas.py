"""Several replicas of a service relay one outbox: one publishes at a time, a dead one's
share is taken over, and no event is lost, duplicated or overtaken within its aggregate."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal

import nats as nats_py
import pytest
from sqlalchemy import select
from superapp.identity.v1 import events_pb2

from services.eventbus import Envelope, Outbox
from services.eventbus.relay_process import RelayProcess
from services.runtime.clock import SystemClock
from services.runtime.ids import new_id
from tests.eventbus.conftest import TABLES, Bench, until

_AGGREGATES = [f"aggregate-{index}" for index in range(8)]
_EVENTS = 240


async def _lease_holder_pid(bench: Bench) -> int | None:
    leases = TABLES.leases
    async with bench.database.read() as session:
        holder = (
            await session.execute(select(leases.c.holder).where(leases.c.name == "outbox-relay"))
        ).scalar_one_or_none()
    return None if holder is None else int(holder.split(":")[1])


async def _outbox_order(bench: Bench) -> dict[str, list[str]]:
    """Each aggregate's event ids in commit (sequence) order."""
    outbox = TABLES.outbox
    async with bench.database.read() as session:
        rows = (
            await session.execute(
                select(outbox.c.aggregate_id, outbox.c.event_id).order_by(outbox.c.seq)
            )
        ).all()
    order: dict[str, list[str]] = {}
    for aggregate, event_id in rows:
        order.setdefault(aggregate, []).append(event_id)
    return order


async def _stream_order(nats_url: str, count: int) -> dict[str, list[str]]:
    """Each aggregate's event ids in the order the stream holds them."""
    client = await nats_py.connect(nats_url)
    try:
        jetstream = client.jetstream()
        subscription = await jetstream.subscribe(
            "superapp.identity.>", stream="SUPERAPP_IDENTITY", ordered_consumer=True
        )
        order: dict[str, list[str]] = {}
        for _ in range(count):
            message = await subscription.next_msg(timeout=10)
            envelope = Envelope.from_headers(message.headers or {})
            order.setdefault(envelope.subject, []).append(envelope.id)
        with pytest.raises(nats_py.errors.TimeoutError):
            await subscription.next_msg(timeout=0.5)  # and nothing more
        return order
    finally:
        await client.close()


@pytest.mark.timeout(180)
async def test_replicas_relay_each_event_once_in_order_and_survive_the_holders_death(
    bench: Bench,
) -> None:
    outboxes = [Outbox(TABLES, "superapp.identity", SystemClock()) for _ in range(2)]
    relays = [
        RelayProcess(
            "identity",
            database_url=bench.database.url,
            nats_url=bench.nats_url,
            outbox=outbox,
            lease_seconds=3.0,
            check_seconds=0.1,
            restart_seconds=(0.2, 0.2),
        )
        for outbox in outboxes
    ]
    for relay in relays:
        relay.start()
    try:
        await asyncio.gather(*(relay.ready.wait() for relay in relays))
        writers = itertools.cycle(outboxes)  # commits arrive at both replicas
        killed: int | None = None
        for index in range(_EVENTS):
            aggregate = _AGGREGATES[index % len(_AGGREGATES)]
            async with bench.database.write() as session:
                await next(writers).record(
                    session,
                    events_pb2.UserRegistered(user_id=new_id()),
                    aggregate_id=aggregate,
                )
            if index == _EVENTS // 2:
                killed = await _lease_holder_pid(bench)
                assert killed in {relay.pid for relay in relays}
                os.kill(killed, signal.SIGKILL)  # dies holding the lease
            await asyncio.sleep(0.005)

        async def all_published() -> bool:
            outbox = TABLES.outbox
            async with bench.database.read() as session:
                waiting = (
                    await session.execute(
                        select(outbox.c.seq).where(outbox.c.published_time.is_(None)).limit(1)
                    )
                ).first()
            return waiting is None

        await until(all_published, 60, "every event published after the holder died")
        assert await _lease_holder_pid(bench) not in {None, killed}
        assert await _stream_order(bench.nats_url, _EVENTS) == await _outbox_order(bench)
    finally:
        for relay in relays:
            await relay.stop()
