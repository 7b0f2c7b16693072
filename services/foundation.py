"""What every service stands on: its own migrated database, its event bus, the count of
its calls in flight that the database consults, and the secrets its replicas share."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy import Table

from services.database import Database, DatabaseUnavailable, open_database
from services.database.service_secrets import service_secret
from services.eventbus import EventTables, ServiceEventBus
from services.runtime.calls_in_flight import CallsInFlight
from services.runtime.clock import Clock, SystemClock
from services.runtime.metrics import Metrics
from services.runtime.page_tokens import PageTokens
from services.runtime.settings import ServiceSettings

__all__ = ["Foundation"]


async def _page_tokens(
    database: Database, secrets: Table, settings: ServiceSettings, clock: Clock
) -> PageTokens:
    configured = settings.page_token_secret
    if configured is not None:
        return PageTokens(configured.get_secret_value().encode())
    return PageTokens(await service_secret(database, secrets, "page_tokens", clock))


@dataclass(frozen=True)
class Foundation:
    """A service's database, event bus and clock, opened together and closed together."""

    database: Database
    bus: ServiceEventBus
    clock: Clock
    calls: CallsInFlight
    """For a service whose calls scan (see `Database.scan`) or write through a
    `BatchWriter` (its `busy`): first in its `ServiceSpec.guards`, it lets the database
    move scans, and the writer lone commands, off the event loop while other calls are
    in flight. Elsewhere it would only add to every call's cost."""
    metrics: Metrics
    """The process's metrics, served by `start_grpc_service` (see `ServiceSpec.metrics`);
    the database and the bus report to them."""
    _page_tokens: PageTokens | None = None

    @classmethod
    async def open(
        cls,
        service: str,
        settings: ServiceSettings,
        *,
        migrations: Path,
        event_tables: EventTables,
        tracer_provider: TracerProvider,
        secrets: Table | None = None,
        clock: Clock | None = None,
    ) -> Foundation:
        """Open and migrate `service`'s database and build (not start) its event bus.

        A service with list RPCs passes its `service_secrets` table as `secrets`, and
        gets `page_tokens`. `clock` is the service's time (the system's unless a test
        fixes it).
        """
        prefix = f"{service.upper()}_"
        calls = CallsInFlight()
        metrics = Metrics(service, enabled=settings.metrics_enabled)
        database = await open_database(
            settings.resolved_database_url(service),
            migrations,
            setting=f"{prefix}DATABASE_URL",
            offload_scans_when=calls.others,
            metrics=metrics,
        )
        clock = clock or SystemClock()
        page_tokens = None
        if secrets is not None:
            try:
                page_tokens = await _page_tokens(database, secrets, settings, clock)
            except Exception as error:
                await database.dispose()
                raise DatabaseUnavailable(
                    f"{prefix}DATABASE_URL: cannot read the page-token secret: "
                    f"{type(error).__name__}: {error}"
                ) from error
        bus = ServiceEventBus(
            service,
            nats_url=settings.nats_url,
            database=database,
            tables=event_tables,
            tracer_provider=tracer_provider,
            clock=clock,
            relay=settings.relay,
            stream_replicas=settings.nats_stream_replicas,
            ack_wait_seconds=settings.event_ack_wait_seconds,
            relay_lease_seconds=settings.relay_lease_seconds,
            metrics=metrics,
        )
        return cls(database, bus, clock, calls, metrics, page_tokens)

    @property
    def page_tokens(self) -> PageTokens:
        """The service's page tokens: under `<PREFIX>_PAGE_TOKEN_SECRET` if that is set,
        else under the secret every replica shares from the service's database (made by
        the first process to start)."""
        if self._page_tokens is None:
            raise RuntimeError("page tokens need the service's `secrets` table at open")
        return self._page_tokens

    @property
    def closers(self) -> list[Callable[[], Awaitable[None]]]:
        """Its releases, for `ServiceSpec.closers` (released in reverse): stop the bus
        (the outbox keeps what is unpublished), then close the database. Two entries,
        so each gets its own time bound and a bus that overruns its bound cannot keep
        the database open."""
        return [self.database.dispose, self.bus.stop]
