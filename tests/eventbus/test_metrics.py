"""The bus's metrics: the outbox backlog and what the relay published, wherever it runs;
what each consumer handled, saw again, dead-lettered, and how far behind it is."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from superapp.identity.v1 import events_pb2

from scripts.nats_process import NatsProcess
from services.eventbus import Envelope, OutboxRelay, ServiceEventBus
from services.runtime.clock import SystemClock
from services.runtime.ids import new_id
from services.runtime.metrics import Metrics
from tests.eventbus.conftest import TABLES, Bench, produce, record_effect, until

_STREAM = {"stream": "SUPERAPP_IDENTITY"}
_EVENT = {"consumer": "effects", "event_type": "superapp.identity.v1.UserRegistered"}


def _at(metrics: Metrics, name: str, value: float, labels: dict[str, str] | None = None) -> bool:
    return metrics.value(name, labels) == value


# The relay in a process of its own reports the same through its parent, whichever the
# database: its child (imports of a few CPU seconds) runs on SQLite only, and its
# PostgreSQL leg is test_relay_process's business.
@pytest.mark.parametrize(
    ("relay", "database_url"),
    [
        ("task", "sqlite"),
        pytest.param("task", "postgresql", marks=pytest.mark.postgres),
        ("process", "sqlite"),
    ],
    indirect=["database_url"],
)
async def test_the_backlog_rises_while_nats_is_away_and_the_relay_reports_what_it_published(
    bench: Bench, nats: NatsProcess, relay: str
) -> None:
    metrics = Metrics("identity")
    bus = ServiceEventBus(
        "identity",
        nats_url=bench.nats_url,
        database=bench.database,
        tables=TABLES,
        tracer_provider=bench.tracer_provider,
        clock=SystemClock(),
        relay=relay,  # type: ignore[arg-type]
        metrics=metrics,
        backlog_seconds=0.1,
    )

    async def metric_is(name: str, value: float, labels: dict[str, str] | None = None) -> bool:
        return _at(metrics, name, value, labels)

    bus.start()
    try:
        await asyncio.wait_for(bus.relay.ready.wait(), timeout=60)
        await until(lambda: metric_is("superapp_outbox_relay_publishing", 1), 30, "the lease")
        await produce(bench, bus.outbox, 10)
        await until(
            lambda: metric_is("superapp_events_published_total", 10, _STREAM), 30, "10 published"
        )

        nats.stop()
        await produce(bench, bus.outbox, 20)
        await until(lambda: metric_is("superapp_outbox_backlog_events", 20), 30, "the backlog")
        # Whatever the relay tried while NATS was away failed (no ack within its bound).
        await until(
            lambda: _failed_at_least(metrics, 1), 60, "the failed publications to be counted"
        )
        assert metrics.value("superapp_outbox_oldest_event_age_seconds") > 0

        nats.start()
        await until(lambda: metric_is("superapp_outbox_backlog_events", 0), 60, "no backlog")
        await until(
            lambda: metric_is("superapp_events_published_total", 30, _STREAM), 30, "30 published"
        )
        await until(lambda: metric_is("superapp_outbox_oldest_event_age_seconds", 0), 30, "no age")
    finally:
        await bus.stop()


async def _failed_at_least(metrics: Metrics, count: int) -> bool:
    return metrics.value("superapp_event_publish_failures_total", _STREAM) >= count


async def test_a_consumer_reports_its_lag_and_what_it_handled(bench: Bench) -> None:
    metrics = Metrics("effects")
    outbox, relay = bench.producer()
    await produce(bench, outbox, 10)
    await until(lambda: _published(relay, 10), 30, "10 events in the stream")
    first_taken = asyncio.Event()
    release = asyncio.Event()

    async def slow_at_first(
        session: AsyncSession, event: events_pb2.UserRegistered, envelope: Envelope
    ) -> None:
        if not first_taken.is_set():
            first_taken.set()
            await release.wait()
        await record_effect(session, event, envelope)

    bench.consumer(slow_at_first, metrics=metrics)
    lag = {"consumer": "effects", "stream": "SUPERAPP_IDENTITY"}
    await asyncio.wait_for(first_taken.wait(), timeout=30)
    # The first event is in its handler: nine more are stored for this consumer.
    assert metrics.value("superapp_consumer_lag_events", lag) == 9
    release.set()

    async def handled_all() -> bool:
        return _at(metrics, "superapp_events_handled_total", 10, _EVENT)

    await until(handled_all, 30, "10 events handled")
    await until(lambda: _lag_is(metrics, lag, 0), 30, "the consumer to catch up")
    assert metrics.value("superapp_events_dead_lettered_total", _EVENT) == 0


async def _published(relay: OutboxRelay, count: int) -> bool:
    return relay.published >= count


async def _lag_is(metrics: Metrics, labels: dict[str, str], value: float) -> bool:
    return _at(metrics, "superapp_consumer_lag_events", value, labels)


async def test_a_dead_lettered_event_is_counted_with_its_redeliveries(bench: Bench) -> None:
    metrics = Metrics("effects")
    poisoned = new_id()

    async def picky(
        session: AsyncSession, event: events_pb2.UserRegistered, envelope: Envelope
    ) -> None:
        if event.user_id == poisoned:
            raise ValueError("cannot handle this one")
        await record_effect(session, event, envelope)

    outbox, _ = bench.producer()
    bench.consumer(picky, max_deliver=3, backoff_seconds=(0.05,), metrics=metrics)
    async with bench.database.write() as session:
        await outbox.record(session, events_pb2.UserRegistered(user_id=poisoned), poisoned)
    await produce(bench, outbox, 10)

    async def dead_lettered() -> bool:
        return _at(metrics, "superapp_events_dead_lettered_total", 1, _EVENT)

    async def handled_the_rest() -> bool:
        return _at(metrics, "superapp_events_handled_total", 10, _EVENT)

    await until(dead_lettered, 30, "the dead letter to be counted")
    await until(handled_the_rest, 30, "the healthy events")
    # Delivered three times: the second and third were redeliveries.
    assert metrics.value("superapp_events_redelivered_total", _EVENT) == 2
