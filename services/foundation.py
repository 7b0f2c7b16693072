"""What every service stands on: its own migrated database, its event bus, and the count
of its calls in flight that the database consults."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider

from services.database import Database, open_database
from services.eventbus import EventTables, ServiceEventBus
from services.runtime.calls_in_flight import CallsInFlight
from services.runtime.clock import Clock, SystemClock
from services.runtime.settings import ServiceSettings

__all__ = ["Foundation"]


@dataclass(frozen=True)
class Foundation:
    """A service's database, event bus and clock, opened together and closed together."""

    database: Database
    bus: ServiceEventBus
    clock: Clock
    calls: CallsInFlight
    """For a service whose calls scan (see `Database.scan`): first in its
    `ServiceSpec.guards`, it lets the database move scans off the event loop while
    other calls are in flight. Elsewhere it would only add to every call's cost."""

    @classmethod
    async def open(
        cls,
        service: str,
        settings: ServiceSettings,
        *,
        migrations: Path,
        event_tables: EventTables,
        tracer_provider: TracerProvider,
        clock: Clock | None = None,
    ) -> Foundation:
        """Open and migrate `service`'s database and build (not start) its event bus.

        `clock` is the service's time (the system's unless a test fixes it)."""
        prefix = f"{service.upper()}_"
        calls = CallsInFlight()
        database = await open_database(
            settings.resolved_database_url(service),
            migrations,
            setting=f"{prefix}DATABASE_URL",
            offload_scans_when=calls.others,
        )
        clock = clock or SystemClock()
        bus = ServiceEventBus(
            service,
            nats_url=settings.nats_url,
            database=database,
            tables=event_tables,
            tracer_provider=tracer_provider,
            clock=clock,
            relay=settings.relay,
        )
        return cls(database, bus, clock, calls)

    @property
    def closers(self) -> list[Callable[[], Awaitable[None]]]:
        """Its releases, for `ServiceSpec.closers` (released in reverse): stop the bus
        (the outbox keeps what is unpublished), then close the database. Two entries,
        so each gets its own time bound and a bus that overruns its bound cannot keep
        the database open."""
        return [self.database.dispose, self.bus.stop]
