"""Durable pull consumers that apply each event exactly once in effect.

A handler runs inside a write transaction that also records the event id in the inbox;
the message is acknowledged only after that transaction commits. A redelivered event
finds its id in the inbox and is acknowledged without running the handler again. A
handler that keeps failing is retried with backoff, then dead-lettered with its reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from google.protobuf.message import DecodeError, Message
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from opentelemetry import propagate
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import Counter, Gauge
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from services.database import Database
from services.eventbus.connection import NatsLink
from services.eventbus.contract import DEADLETTER_STREAM, event_subject, event_type, stream_of
from services.eventbus.envelope import Envelope, MalformedEnvelope
from services.eventbus.schema import EventTables
from services.eventbus.streams import ensure_stream
from services.runtime.clock import Clock
from services.runtime.metrics import Metrics
from services.runtime.tasks import stop_task

__all__ = ["EventConsumer", "Handler"]

_log = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)
Handler = Callable[[AsyncSession, M, Envelope], Awaitable[None]]


@dataclass(frozen=True)
class _Subscription(Generic[M]):
    message_class: type[M]
    handler: Handler[M]


class _Poison(Exception):
    """A message no retry can fix: it goes straight to the dead-letter stream."""


@dataclass(frozen=True, slots=True)
class _EventMeters:
    """The counters of one consumer and one event type."""

    handled: Counter
    redelivered: Counter
    dead_lettered: Counter


class _ConsumerMeters:
    """A consumer's families. The event type label is the subscribed type of the
    message's subject, never what its headers claim: a malformed message must not
    add a series."""

    def __init__(self, metrics: Metrics, consumer: str) -> None:
        self._consumer = consumer
        self._lag = metrics.gauge(
            "superapp_consumer_lag_events",
            "Events stored for this consumer and not yet delivered, as of its last fetch.",
            ("consumer", "stream"),
        )
        by_type = ("consumer", "event_type")
        self._handled = metrics.counter(
            "superapp_events_handled_total",
            "Events handled and acknowledged (a redelivered duplicate included).",
            by_type,
        )
        self._redelivered = metrics.counter(
            "superapp_events_redelivered_total",
            "Deliveries of an event after its first (a failed handler, a lost ack).",
            by_type,
        )
        self._dead_lettered = metrics.counter(
            "superapp_events_dead_lettered_total",
            "Events moved to the dead-letter stream: undecodable, or failing every delivery.",
            by_type,
        )
        self._by_subject: dict[str, _EventMeters] = {}
        self._unknown = self._meters("unknown")

    def _meters(self, event_type: str) -> _EventMeters:
        labels = (self._consumer, event_type)
        return _EventMeters(
            self._handled.labels(*labels),
            self._redelivered.labels(*labels),
            self._dead_lettered.labels(*labels),
        )

    def expect(self, subject: str, event_type: str) -> None:
        """Bind the counters of a subscribed subject."""
        self._by_subject[subject] = self._meters(event_type)

    def of(self, subject: str) -> _EventMeters:
        """The counters of a message on `subject` (`unknown` for one not subscribed)."""
        return self._by_subject.get(subject, self._unknown)

    def lag(self, stream: str) -> Gauge:
        """The lag gauge of this consumer on `stream`."""
        return self._lag.labels(self._consumer, stream)


class EventConsumer:
    """One service's durable consumers; declare handlers with `subscribe` before `start`.

    `name` is the durable consumer name on each stream (one per consuming service).
    """

    def __init__(
        self,
        name: str,
        *,
        database: Database,
        tables: EventTables,
        link: NatsLink,
        tracer_provider: TracerProvider,
        clock: Clock,
        max_deliver: int = 5,
        backoff_seconds: Sequence[float] = (0.5, 2.0, 5.0, 15.0),
        ack_wait_seconds: float = 30.0,
        batch_size: int = 64,
        stream_replicas: int = 1,
        metrics: Metrics | None = None,
    ) -> None:
        """`metrics`: the process's (its own if not given), for the consumer's families."""
        self.name = name
        self._database = database
        self._inbox = tables.inbox
        self._link = link
        self._tracer = tracer_provider.get_tracer(__name__)
        self._clock = clock
        self._max_deliver = max_deliver
        self._backoff = tuple(backoff_seconds)
        self._ack_wait = ack_wait_seconds
        self._batch_size = batch_size
        self._stream_replicas = stream_replicas
        self._subscriptions: dict[str, _Subscription[Any]] = {}
        self._meters = _ConsumerMeters(metrics or Metrics(name), name)
        self._tasks: list[asyncio.Task[None]] = []
        self._unbound: set[str] = set()
        self.ready = asyncio.Event()
        """Set once this service's durable consumer is bound on every stream it reads
        (at once if it subscribes to nothing): events published from then on reach it."""

    def subscribe(self, message_class: type[M], handler: Handler[M]) -> None:
        """Run `handler` for every `message_class` event, inside the inbox transaction."""
        if self._tasks:
            raise RuntimeError("subscribe before start()")
        subject = event_subject(message_class)
        self._subscriptions[subject] = _Subscription(message_class, handler)
        self._meters.expect(subject, event_type(message_class))

    @property
    def subscribes(self) -> bool:
        """Whether any event type is subscribed to."""
        return bool(self._subscriptions)

    def start(self) -> None:
        """Consume in the background, one pull loop per source stream."""
        by_stream: dict[str, list[str]] = {}
        for subject in self._subscriptions:
            by_stream.setdefault(subject.split(".")[1], []).append(subject)
        self._unbound = set(by_stream)
        if not self._unbound:
            self.ready.set()
        for service, subjects in by_stream.items():
            task = asyncio.create_task(
                self._consume(service, subjects), name=f"consume-{self.name}-{service}"
            )
            self._tasks.append(task)

    async def stop(self) -> None:
        """Stop pulling; a message in its handler is left unacknowledged for redelivery."""
        await asyncio.gather(*(stop_task(task, within=2.0) for task in self._tasks))
        self._tasks.clear()

    async def _consume(self, service: str, subjects: list[str]) -> None:
        stream = stream_of(service)
        await self._link.wait()
        failures = 0
        while True:
            # (Re)bind after every failure and every reconnection: a pull subscription
            # made before a NATS restart can wait forever (nats.py issue #504).
            generation = self._link.generation
            try:
                jetstream = self._link.jetstream
                await ensure_stream(jetstream, DEADLETTER_STREAM, replicas=self._stream_replicas)
                # Declared here too (the same spec, so idempotent): a consumer that starts
                # before its publisher binds at once instead of waiting for the stream.
                await ensure_stream(jetstream, stream, replicas=self._stream_replicas)
                await jetstream.add_consumer(
                    stream.name,
                    ConsumerConfig(
                        durable_name=self.name,
                        ack_policy=AckPolicy.EXPLICIT,
                        deliver_policy=DeliverPolicy.ALL,
                        ack_wait=self._ack_wait,
                        # Unlimited on the server: this consumer dead-letters after its own
                        # max_deliver, so no message is ever dropped without a record.
                        max_deliver=-1,
                        filter_subjects=subjects,
                    ),
                )
                pull = await jetstream.pull_subscribe_bind(self.name, stream=stream.name)
                failures = 0
                self._bound(service)
                lag = self._meters.lag(stream.name)
                while generation == self._link.generation:
                    # Long-poll for one message: nats.py's fetch(n) would wait out its
                    # timeout to fill a batch. Each delivery says how many more are stored
                    # (`num_pending`); fetching exactly those returns without waiting.
                    try:
                        messages = await pull.fetch(1, timeout=1.0)
                        while messages:
                            pending = messages[-1].metadata.num_pending or 0
                            lag.set(pending)
                            for message in messages:
                                await self._handle(message)
                            if not pending:
                                break
                            # Short timeout: if fewer than counted are deliverable (say, some
                            # await redelivery), fetch(n) would linger for the full timeout.
                            with contextlib.suppress(TimeoutError):
                                messages = []
                                messages = await pull.fetch(
                                    min(pending, self._batch_size), timeout=0.02
                                )
                    except TimeoutError:
                        # An idle poll: nats.py raises its own subclass or the builtin.
                        lag.set(0)
                        continue
                with contextlib.suppress(Exception):
                    await pull.unsubscribe()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # NATS away or restarting: retry with backoff
                failures += 1
                delay = min(0.2 * 2**failures, 5.0)
                _log.warning(
                    "consumer %s on %s: %s; retrying in %.1fs", self.name, stream.name, error, delay
                )
                await asyncio.sleep(delay)

    def _bound(self, service: str) -> None:
        self._unbound.discard(service)
        if not self._unbound:
            self.ready.set()

    async def _handle(self, message: Msg) -> None:
        deliveries = message.metadata.num_delivered
        meters = self._meters.of(message.subject)
        if deliveries is not None and deliveries > 1:
            meters.redelivered.inc()
        context = propagate.extract(dict(message.headers or {}))
        with self._tracer.start_as_current_span(
            f"{message.subject} process",
            context=context,
            kind=SpanKind.CONSUMER,
            attributes={"messaging.system": "nats", "messaging.consumer.group.name": self.name},
        ) as span:
            try:
                subscription, event, envelope = self._decode(message)
                span.set_attribute("messaging.message.id", envelope.id)
                await self._apply(subscription, event, envelope)
            except _Poison as error:
                span.set_status(Status(StatusCode.ERROR, str(error)))
                await self._dead_letter(message, f"undecodable: {error}", deliveries)
                return
            except Exception as error:  # the handler failed: retry, or dead-letter at the end
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, str(error)))
                if deliveries >= self._max_deliver:
                    await self._dead_letter(message, f"{type(error).__name__}: {error}", deliveries)
                else:
                    delay = self._backoff[min(deliveries, len(self._backoff)) - 1]
                    _log.warning(
                        "handler for %s failed (attempt %d/%d), retry in %.1fs: %s",
                        message.subject, deliveries, self._max_deliver, delay, error,
                    )  # fmt: skip
                    await message.nak(delay=delay)
                return
        await message.ack()
        meters.handled.inc()

    def _decode(self, message: Msg) -> tuple[_Subscription[Any], Message, Envelope]:
        subscription = self._subscriptions.get(message.subject)
        if subscription is None:
            raise _Poison(f"no handler for subject {message.subject}")
        try:
            envelope = Envelope.from_headers(message.headers)
            expected = event_type(subscription.message_class)
            if envelope.type != expected:
                raise _Poison(f"ce-type {envelope.type} where {expected} was expected")
            event = subscription.message_class.FromString(message.data)
        except (MalformedEnvelope, DecodeError) as error:
            raise _Poison(str(error)) from error
        return subscription, event, envelope

    async def _apply(
        self, subscription: _Subscription[Any], event: Message, envelope: Envelope
    ) -> None:
        dialect = sqlite if self._database.dialect == "sqlite" else postgresql
        record = (
            dialect.insert(self._inbox)
            .values(
                consumer=self.name,
                event_id=envelope.id,
                event_type=envelope.type,
                handled_time=self._clock.now(),
            )
            .on_conflict_do_nothing()
        )
        async with self._database.write() as session:
            first_time = (await session.execute(record)).rowcount == 1  # type: ignore[attr-defined]
            if first_time:
                await subscription.handler(session, event, envelope)

    async def _dead_letter(self, message: Msg, reason: str, deliveries: int) -> None:
        headers = dict(message.headers or {})
        event_id = headers.get("ce-id", f"seq-{message.metadata.sequence.stream}")
        headers.update(
            {
                "Nats-Msg-Id": f"{self.name}:{event_id}",
                "superapp-deadletter-reason": reason[:2000],
                "superapp-deadletter-consumer": self.name,
                "superapp-deadletter-subject": message.subject,
                "superapp-deadletter-deliveries": str(deliveries),
            }
        )
        try:
            await self._link.jetstream.publish(
                f"superapp.deadletter.{self.name}", message.data, headers=headers
            )
        except Exception as error:  # keep the message: it is redelivered and tried again
            _log.error("cannot dead-letter %s: %s", event_id, error)
            await message.nak(delay=self._backoff[-1])
            return
        _log.error("dead-lettered %s after %d deliveries: %s", event_id, deliveries, reason)
        self._meters.of(message.subject).dead_lettered.inc()
        await message.term()
