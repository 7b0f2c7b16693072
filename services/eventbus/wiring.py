"""A service's whole event bus, built, started and stopped as one piece."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from opentelemetry.sdk.trace import TracerProvider

from services.database import Database
from services.eventbus.connection import NatsLink
from services.eventbus.consumer import EventConsumer, Handler, M
from services.eventbus.contract import stream_of
from services.eventbus.outbox import Outbox
from services.eventbus.relay import Backlog, OutboxRelay, read_backlog
from services.eventbus.relay_metrics import RelayMetrics
from services.eventbus.relay_process import RelayProcess
from services.eventbus.schema import EventTables
from services.runtime.clock import Clock
from services.runtime.metrics import Metrics
from services.runtime.settings import RelayMode

__all__ = ["ServiceEventBus"]


class ServiceEventBus:
    """The NATS link, outbox and relay of one service, plus its consumer if it subscribes.

    Publishing goes through `outbox.record(...)` inside a domain transaction; consuming
    is declared with `subscribe(...)` at wiring time, before `start()`. The relay runs
    as `relay` says: in a child process of its own (see `RelayProcess`) or as a task here.
    Every stream it declares gets `stream_replicas` copies; a message its consumer took
    and did not acknowledge within `ack_wait_seconds` (its replica died) goes to another.
    """

    def __init__(
        self,
        service: str,
        *,
        nats_url: str,
        database: Database,
        tables: EventTables,
        tracer_provider: TracerProvider,
        clock: Clock,
        relay: RelayMode,
        stream_replicas: int = 1,
        ack_wait_seconds: float = 30.0,
        relay_lease_seconds: float = 10.0,
        metrics: Metrics | None = None,
        backlog_seconds: float = 5.0,
    ) -> None:
        """`metrics`: the process's (its own if not given), which get the relay's and
        the consumer's families; the outbox backlog is sampled every `backlog_seconds`."""
        self.metrics = metrics or Metrics(service)
        self.link = NatsLink(nats_url, f"superapp-{service}")
        self.outbox = Outbox(tables, f"superapp.{service}", clock)
        stream = stream_of(service)
        self._relay_metrics = RelayMetrics(
            self.metrics, stream=stream.name, interval_seconds=backlog_seconds
        )
        self.relay: OutboxRelay | RelayProcess
        self._backlog: Callable[[], Awaitable[Backlog]]
        if relay == "process":
            self.relay = RelayProcess(
                service,
                database_url=database.url,
                nats_url=nats_url,
                outbox=self.outbox,
                stream_replicas=stream_replicas,
                lease_seconds=relay_lease_seconds,
                counted=self._relay_metrics.counted,
            )
            # The child's relay is elsewhere; the table says the same as it would.
            self._backlog = functools.partial(read_backlog, database, tables.outbox, clock)
        else:
            self.relay = OutboxRelay(
                database=database,
                tables=tables,
                outbox=self.outbox,
                link=self.link,
                stream=stream,
                tracer_provider=tracer_provider,
                clock=clock,
                stream_replicas=stream_replicas,
                lease_seconds=relay_lease_seconds,
                counted=self._relay_metrics.counted,
            )
            self._backlog = self.relay.backlog
        self.consumer = EventConsumer(
            service,
            database=database,
            tables=tables,
            link=self.link,
            tracer_provider=tracer_provider,
            clock=clock,
            ack_wait_seconds=ack_wait_seconds,
            stream_replicas=stream_replicas,
            metrics=self.metrics,
        )

    def subscribe(self, message_class: type[M], handler: Handler[M]) -> None:
        """Handle `message_class` events exactly once in effect (see EventConsumer)."""
        self.consumer.subscribe(message_class, handler)

    async def wait_ready(self) -> None:
        """Until events flow both ways: the relay is connected with the service's stream
        declared, and the consumer is bound on every stream it reads."""
        await self.relay.ready.wait()
        await self.consumer.ready.wait()

    def start(self) -> None:
        """Connect in the background and start relaying and consuming."""
        # A relay in its own process has its own connection; this one serves only the
        # in-process relay and the consumer.
        if isinstance(self.relay, OutboxRelay) or self.consumer.subscribes:
            self.link.start()
        self.relay.start()
        self.consumer.start()
        relay = self.relay
        self._relay_metrics.start(backlog=self._backlog, publishing=lambda: relay.publishing)

    async def stop(self) -> None:
        """Stop consuming, stop relaying (the outbox keeps the rest), close the link."""
        await self._relay_metrics.stop()
        await self.consumer.stop()
        await self.relay.stop()
        await self.link.close()
