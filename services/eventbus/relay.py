"""Publish outbox rows to JetStream in commit order, and never lose one.

The relay wakes when a transaction that recorded events commits (and polls slowly for
rows written by other processes of the same service), publishes a batch pipelined with
`Nats-Msg-Id` = event id, and remembers the acknowledged prefix. Marking rows published
is bookkeeping, so it is flushed every `mark_seconds` rather than per batch: a crash
before a flush re-sends a few events, which JetStream's duplicate window (minutes, far
longer than the flush interval) drops. Anything not acknowledged is retried with backoff.

With several replicas of a service, each runs a relay over the same outbox, but only the
holder of the service's `outbox-relay` lease publishes (see `services.database.leases`):
publishing in commit order is one job, and split between replicas the events of one
aggregate could overtake each other. The others stand by and take over when the holder
stops (it gives the lease up) or dies (its lease lapses after `lease_seconds`). The holder
starts a batch only while its lease has more than the batch's acknowledgement bound left,
so batches of two holders do not overlap; and should a stalled holder still send a batch
late, no order is lost: each holder sends from the oldest unpublished event on, in
order, so every event first reaches the stream after the events before it, and JetStream
drops the later copies by message id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from nats.js.api import PubAck
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind, Status, StatusCode
from sqlalchemy import ColumnElement, Table, bindparam, func, select

from services.database import Database
from services.database.leases import Lease, lease_holder_name
from services.eventbus.connection import NatsLink
from services.eventbus.contract import StreamSpec
from services.eventbus.envelope import Envelope
from services.eventbus.outbox import Outbox
from services.eventbus.schema import EventTables
from services.eventbus.streams import ensure_stream
from services.runtime.clock import Clock
from services.runtime.tasks import stop_task
from services.runtime.tracing import exports_spans

__all__ = ["Backlog", "Counted", "OutboxRelay", "read_backlog"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Backlog:
    """Events recorded but not yet acknowledged by JetStream."""

    count: int
    oldest_age_seconds: float


Counted = Callable[[int, int], None]
"""Told after each batch: events acknowledged, events whose publication failed."""


async def read_backlog(
    database: Database, table: Table, clock: Clock, *, acknowledged: Sequence[int] = ()
) -> Backlog:
    """The outbox's backlog as its table says, less the `acknowledged` sequence numbers
    a relay has not marked yet."""
    waiting: ColumnElement[bool] = table.c.published_time.is_(None)
    if acknowledged:
        waiting &= table.c.seq.not_in(acknowledged)
    async with database.read() as session:
        count, oldest = (
            await session.execute(select(func.count(), func.min(table.c.occur_time)).where(waiting))
        ).one()
    age = (clock.now() - oldest).total_seconds() if oldest is not None else 0.0
    return Backlog(int(count), max(0.0, age))


def _ack_failure(ack: asyncio.Future[PubAck]) -> str | None:
    """Why `ack` did not acknowledge its event, or None if it did."""
    if not ack.done() or ack.cancelled():
        return "no ack in time"
    error = ack.exception()
    return None if error is None else repr(error)


class OutboxRelay:
    """The background task that drains one service's outbox into its stream."""

    def __init__(
        self,
        *,
        database: Database,
        tables: EventTables,
        outbox: Outbox,
        link: NatsLink,
        stream: StreamSpec,
        tracer_provider: TracerProvider,
        clock: Clock,
        batch_size: int = 256,
        poll_seconds: float = 1.0,
        ack_timeout_seconds: float = 5.0,
        retention: timedelta = timedelta(days=1),
        report_seconds: float = 30.0,
        mark_seconds: float = 0.1,
        lease_seconds: float = 10.0,
        stream_replicas: int = 1,
        counted: Counted | None = None,
    ) -> None:
        """`counted` hears of every batch's outcome (the service's metrics)."""
        self._database = database
        self._table = tables.outbox
        self._outbox = outbox
        self._link = link
        self._stream = stream
        self._tracer = tracer_provider.get_tracer(__name__)
        # Without an exporter a PRODUCER span per event would be built and dropped; the
        # event then carries the recording request's own trace context instead.
        self._record_spans = exports_spans(tracer_provider)
        self._clock = clock
        self._batch_size = batch_size
        self._poll = poll_seconds
        self._ack_timeout = ack_timeout_seconds
        self._retention = retention
        self._report = report_seconds
        self._mark_every = mark_seconds
        self._stream_replicas = stream_replicas
        self._lease = Lease(
            database,
            tables.leases,
            "outbox-relay",
            holder=lease_holder_name(),
            ttl=timedelta(seconds=lease_seconds),
            clock=clock,
        )
        # Renewed several times per lease, so one slow renewal does not lose it; a batch
        # starts only while more than its acknowledgement bound is left (or half the
        # lease, for a short one).
        self._renew_every = lease_seconds / 5
        self._batch_margin = timedelta(seconds=min(ack_timeout_seconds, lease_seconds / 2))
        self._acknowledged: list[int] = []
        """Sequence numbers acknowledged by JetStream but not yet marked in the database."""
        self._flushing: list[int] = []
        """Acknowledged sequence numbers whose marks are being written right now."""
        table = self._table
        self._unpublished = (
            select(table)
            .where(table.c.published_time.is_(None))
            .order_by(table.c.seq)
            .limit(bindparam("limit"))
        )
        self._unpublished_after = self._unpublished.where(table.c.seq > bindparam("after"))
        self._mark = (
            table.update()
            .where(table.c.seq.in_(bindparam("seqs", expanding=True)))
            .values(published_time=bindparam("now"))
        )
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()
        """Set once connected to NATS with the stream declared: from then on, a commit's
        events reach the stream at once (until NATS goes away; the outbox keeps them)."""
        self.published = 0
        """Events acknowledged by JetStream since start (for metrics and tests)."""
        self.failed = 0
        """Events whose publication failed since start (each is retried)."""
        self._counted = counted

    def start(self) -> None:
        """Run the relay in the background."""
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self, *, drain_seconds: float = 1.0) -> None:
        """Stop; first publish what is already committed, if NATS takes it within
        `drain_seconds`. Rows still unpublished wait for the next start."""
        if self._task is not None:
            stopped = await stop_task(self._task, within=2.0)
            self._task = None
            if not stopped:
                # Its loop may still be publishing and marking: leave the rest to it
                # rather than race it; the next start re-sends whatever is unmarked.
                return
            if self._link.is_connected and self._lease.held(self._batch_margin):
                # A commit just before shutdown may not have woken us yet (see
                # RelayProcess's throttled wake-ups). A batch cut short above is simply
                # sent again: JetStream drops the duplicates by message id.
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(drain_seconds):
                        await self._drain()
        with contextlib.suppress(Exception):  # unmarked rows are re-sent and deduplicated
            await self._mark_published()
        with contextlib.suppress(Exception):  # else it lapses: the next holder waits longer
            await self._lease.release()

    @property
    def publishing(self) -> bool:
        """Whether this relay holds its service's lease and publishes (rather than stand
        by for another replica's)."""
        return self._lease.held(self._batch_margin)

    async def _drain(self) -> None:
        while await self._publish_batch():
            pass

    async def _mark_published(self) -> None:
        if not self._acknowledged:
            return
        # Until the marks commit, the rows stay known as acknowledged (`_flushing`), so
        # neither the backlog nor the next scan counts them as waiting.
        self._flushing, self._acknowledged = self._acknowledged, []
        try:
            marks = {"seqs": self._flushing, "now": self._clock.now()}
            await self._database.sync_write(lambda c: c.execute(self._mark, marks))
        except BaseException:
            self._acknowledged[:0] = self._flushing
            raise
        finally:
            self._flushing = []

    async def backlog(self) -> Backlog:
        """How many events wait for JetStream's acknowledgement, and how old the oldest is."""
        return await read_backlog(
            self._database,
            self._table,
            self._clock,
            acknowledged=self._acknowledged + self._flushing,
        )

    async def _run(self) -> None:
        failures = 0
        loop = asyncio.get_running_loop()
        await self._link.wait()
        while True:
            try:
                await ensure_stream(
                    self._link.jetstream, self._stream, replicas=self._stream_replicas
                )
                self.ready.set()
                break
            except Exception as error:  # NATS away or not ready: the outbox keeps everything
                failures += 1
                _log.warning("cannot declare stream %s yet: %s", self._stream.name, error)
                await asyncio.sleep(min(0.2 * 2**failures, 5.0))
        failures = 0
        last_mark = last_report = last_prune = loop.time()
        last_renewal = -float("inf")
        while True:
            # Cleared before the scan: a commit after it sets the event again, so no
            # wake-up is lost between the scan and the wait below.
            self._outbox.committed.clear()
            try:
                if loop.time() - last_renewal >= self._renew_every:
                    last_renewal = loop.time()
                    if not await self._lease.hold():
                        # Another replica publishes: stand by, ready to take over.
                        await asyncio.sleep(self._renew_every)
                        continue
                if not self._lease.held(self._batch_margin):
                    last_renewal = -float("inf")  # renew before the next batch
                    continue
                full = await self._publish_batch()
                now = loop.time()
                if self._acknowledged and now - last_mark >= self._mark_every:
                    last_mark = now
                    await self._mark_published()
                failures = 0
            except Exception as error:  # NATS away, ack lost, database busy: back off, retry
                failures += 1
                delay = min(0.1 * 2**failures, 5.0)
                _log.warning("relay publish failed (%s); retrying in %.1fs", error, delay)
                await asyncio.sleep(delay)
                continue
            if now - last_report >= self._report:
                last_report = now
                await self._log_backlog()
            if now - last_prune >= 60.0:
                last_prune = now
                await self._prune()
            if full:
                continue
            wait = self._poll
            if self._acknowledged:
                wait = max(0.0, self._mark_every - (loop.time() - last_mark))
            # asyncio.timeout, not wait_for: on 3.11 wait_for can lose the cancellation
            # that stops the relay (see services.runtime.tasks).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._outbox.committed.wait()

    async def _publish_batch(self) -> bool:
        """Publish the next batch; True when it was full (more may be waiting)."""
        # A bounded read of the partial index on unpublished rows: inline on SQLite.
        if in_flight := self._acknowledged + self._flushing:
            # Acknowledged rows stay unpublished in the table until their marks land
            # (every `mark_seconds`); reading them again on every wake-up cost more
            # than publishing. Rows after the newest of them are the new ones. A row
            # that commits late with a lower number (concurrent writers on
            # PostgreSQL) is found by the full scan after the next marking.
            rows = await self._database.lookup(
                self._unpublished_after, {"after": max(in_flight), "limit": self._batch_size}
            )
        else:
            rows = await self._database.lookup(self._unpublished, {"limit": self._batch_size})
        if not rows:
            return False
        try:
            acknowledged = await self._send(rows)
        except Exception:
            self._count(0, len(rows))
            raise
        self._acknowledged.extend(row.seq for row in acknowledged)
        self._count(len(acknowledged), len(rows) - len(acknowledged))
        if len(acknowledged) < len(rows):
            raise ConnectionError(f"{len(rows) - len(acknowledged)} events not acknowledged")
        return len(rows) == self._batch_size

    def _count(self, published: int, failed: int) -> None:
        self.published += published
        self.failed += failed
        if self._counted is not None:
            self._counted(published, failed)

    async def _send(self, rows: Sequence[Any]) -> list[Any]:
        """Publish `rows` pipelined; those acknowledged, in order, up to the first that
        was not."""
        jetstream = self._link.jetstream
        pending: list[tuple[Any, trace.Span | None, asyncio.Future[PubAck]]] = []
        for row in rows:
            span, carrier = self._producer_span(row)
            envelope = Envelope(
                id=row.event_id,
                type=row.event_type,
                source=row.source,
                subject=row.aggregate_id,
                time=row.occur_time,
                trace=carrier,
            )
            try:
                ack = await jetstream.publish_async(
                    row.subject,
                    row.payload,
                    headers=envelope.headers(),
                    wait_stall=self._ack_timeout,
                )
            except Exception:
                if span is not None:
                    span.end()
                break
            pending.append((row, span, ack))
        return await self._await_acks(pending)

    def _producer_span(self, row: Any) -> tuple[trace.Span | None, dict[str, str]]:
        """The PRODUCER span of one event, if spans are recorded, and the trace context
        its message carries."""
        if not self._record_spans:
            return None, dict(row.trace or {})
        span = self._tracer.start_span(
            f"{row.subject} publish",
            context=propagate.extract(row.trace),
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "nats",
                "messaging.destination.name": row.subject,
                "messaging.message.id": row.event_id,
            },
        )
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=trace.set_span_in_context(span))
        return span, carrier

    async def _await_acks(
        self, pending: list[tuple[Any, trace.Span | None, asyncio.Future[PubAck]]]
    ) -> list[Any]:
        """The rows acknowledged in order, stopping at the first that was not.

        One deadline for the whole batch: acks arrive in publish order, and waiting on
        each in turn armed a timer per event.
        """
        if pending:
            await asyncio.wait([ack for _, _, ack in pending], timeout=self._ack_timeout)
        acknowledged: list[Any] = []
        failed = False
        for row, span, ack in pending:
            reason = None if failed else _ack_failure(ack)
            if reason is not None:
                failed = True
                if span is not None:
                    span.set_status(Status(StatusCode.ERROR, reason))
            if failed:
                ack.cancel()
            else:
                acknowledged.append(row)
            if span is not None:
                span.end()
        return acknowledged

    async def _log_backlog(self) -> None:
        backlog = await self.backlog()
        if backlog.count:
            _log.info(
                "outbox backlog: %d events, oldest %.1fs",
                backlog.count,
                backlog.oldest_age_seconds,
                extra={"backlog": backlog.count, "oldest_age": backlog.oldest_age_seconds},
            )

    async def _prune(self) -> None:
        cutoff = self._clock.now() - self._retention
        async with self._database.write() as session:
            await session.execute(self._table.delete().where(self._table.c.published_time < cutoff))
